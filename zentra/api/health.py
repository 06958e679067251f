from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from kombu import Connection
from redis import Redis
from redis.exceptions import RedisError


def healthz(request):
    """200 when PostgreSQL, Redis and the Celery broker answer; 503 naming the one that did not.

    The broker is asked on its own (CELERY_BROKER_URL may name another server than REDIS_URL):
    with it down, requests would still commit but no webhook, settlement or expiry would run."""
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
    try:
        # One attempt, one second: a probe must answer before the load balancer gives up on it.
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=1,
                        transport_options={"socket_connect_timeout": 1, "socket_timeout": 1}) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:  # kombu wraps each transport's errors in its own classes
        checks["broker"] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status=200 if healthy else 503)
