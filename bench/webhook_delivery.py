"""Webhook delivery throughput, and what the outbox adds to a posting.

Deliveries per second: a real Celery worker (2 processes) sends to a local receiver in its
own process; the bench nudges the relay until every delivery succeeded. The outbox cost:
postings per second through the service for a tenant with no endpoint and for one with
three endpoints subscribed to everything, in the same run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from common import BENCH_URL, ROOT, configure_django, recreate_database

RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as any production receiver behind a proxy does
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
server.daemon_threads = True
server.serve_forever()
"""
RECEIVER_PORT = int(os.environ.get("ZENTRA_BENCH_RECEIVER_PORT", "8791"))
BROKER = os.environ.get("ZENTRA_BENCH_BROKER", "redis://127.0.0.1:6379/15")
WORKER_PROCESSES = 2


def _env() -> dict:
    return {**os.environ, "DATABASE_URL": BENCH_URL, "DJANGO_DEBUG": "1", "CELERY_BROKER_URL": BROKER,
            "ZENTRA_WEBHOOK_ALLOW_PRIVATE": "1", "DJANGO_LOG_LEVEL": "WARNING"}


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _endpoints(tenant, count: int) -> None:
    from audit.actors import Actor
    from webhooks.services.endpoints import endpoint_create

    for _ in range(count):
        endpoint_create(tenant=tenant, url=f"http://127.0.0.1:{RECEIVER_PORT}/hook", actor=Actor.system("bench"))


def outbox_cost(seconds: float) -> dict:
    import postings
    from django.conf import settings

    from audit.actors import Actor
    from backoffice.services.bootstrap import tenant_bootstrap
    from zentra.celery import app

    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True
    app.conf.broker_url = BROKER
    plain, _ = tenant_bootstrap(slug="bench-no-hooks", name="no hooks", currency="USD", actor=Actor.system("bench"))
    hooked, _ = tenant_bootstrap(slug="bench-3-hooks", name="3 hooks", currency="USD", actor=Actor.system("bench"))
    _endpoints(hooked, 3)
    without = postings.rate(postings._service_worker, plain.id, postings.make_accounts(plain, "plain"), 1, seconds)
    with_three = postings.rate(postings._service_worker, hooked.id, postings.make_accounts(hooked, "hooked"), 1,
                               seconds)
    return {"without": without, "with_three": with_three}


def delivery_rate(count: int) -> tuple[int, float]:
    from django.db import transaction

    from audit.actors import Actor
    from backoffice.services.bootstrap import tenant_bootstrap
    from webhooks.models import Delivery
    from webhooks.services.outbox import event_emit

    tenant, _ = tenant_bootstrap(slug="bench-delivery", name="delivery", currency="USD", actor=Actor.system("bench"))
    _endpoints(tenant, 1)
    Delivery.objects.filter(status=Delivery.PENDING).update(status=Delivery.FAILED, next_attempt_at=None)
    with transaction.atomic():
        for index in range(count):
            event_emit(tenant=tenant, type="account.created", resource_id=f"bench_{index}",
                       data_object={"id": f"bench_{index}"}, actor=Actor.system("bench"))
    receiver = _start([sys.executable, "-c", RECEIVER, str(RECEIVER_PORT)])
    worker = _start([sys.executable, "-m", "celery", "-A", "zentra", "worker", "--concurrency", str(WORKER_PROCESSES),
                     "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"])
    try:
        from webhooks.tasks import relay

        time.sleep(3)  # let the worker connect before the clock starts
        started = time.perf_counter()
        pending = Delivery.objects.filter(tenant=tenant, status=Delivery.PENDING)
        while pending.exists():
            relay.apply_async()
            time.sleep(0.5)
            if time.perf_counter() - started > 600:
                raise RuntimeError("deliveries did not finish within 10 minutes")
        elapsed = time.perf_counter() - started
        return Delivery.objects.filter(tenant=tenant, status=Delivery.SUCCEEDED).count(), elapsed
    finally:
        _stop(worker)
        _stop(receiver)


def main() -> int:
    """`make bench-webhooks`: delivery throughput and the outbox's cost to a posting, on a
    throwaway database of their own, beside the raw posting baseline (pgbench, 1 client)."""
    from reconciliation import pgbench_baseline

    seconds = float(os.environ.get("ZENTRA_BENCH_SECONDS", "8"))
    count = int(os.environ.get("ZENTRA_BENCH_DELIVERIES", "5000"))
    recreate_database()
    configure_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    cost = outbox_cost(seconds)
    delivered, elapsed = delivery_rate(count)
    raw = pgbench_baseline(seconds)
    print("| postings/s, tenant without endpoints | with 3 endpoints | with/without | raw postings/s (pgbench, 1) |")
    print("|---:|---:|---:|---:|")
    print(f"| {cost['without']:.0f} | {cost['with_three']:.0f} | {cost['with_three'] / cost['without']:.2f} "
          f"| {raw or 0:.0f} |")
    print()
    print(f"| deliveries (1 worker, {WORKER_PROCESSES} processes, local receiver) | seconds | deliveries/s |")
    print("|---:|---:|---:|")
    print(f"| {delivered:,} | {elapsed:.1f} | {delivered / elapsed:.0f} |")
    return 0 if delivered == count else 1


if __name__ == "__main__":
    sys.exit(main())
