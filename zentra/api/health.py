from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from redis import Redis
from redis.exceptions import RedisError


def healthz(request):
    """200 when PostgreSQL and Redis answer; 503 naming the one that did not."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:  # any failure to answer is "down", whatever its class
        checks["postgres"] = f"error: {exc.__class__.__name__}"
    try:
        client = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
        checks["redis"] = "ok"
    except (RedisError, OSError) as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status=200 if healthy else 503)
