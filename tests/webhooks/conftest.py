"""Shared pieces of the webhook tests: local receivers, real subprocesses, a private Redis."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.db import connection

from .receiver import Receiver, free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@pytest.fixture
def receivers(settings):
    """Start receivers on demand (`receivers()`, `receivers(port=...)`); all stop at the end."""
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True
    started: list[Receiver] = []

    def start(**kwargs) -> Receiver:
        server = Receiver(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def receiver(receivers):
    return receivers()


def create_endpoint(ctx, url: str, **fields) -> dict:
    response = ctx.post("/v1/webhook_endpoints", {"url": url, **fields})
    assert response.status_code == 201, response.content
    return response.json()


def create_account(ctx, **fields) -> dict:
    body = {"currency": "USD", "account_type": "customer", "customer": "cus_1", **fields}
    response = ctx.post("/v1/accounts", body)
    assert response.status_code == 201, response.content
    return response.json()


def transfer(ctx, source: dict, destination: dict, amount: int):
    return ctx.post("/v1/transactions", {"description": f"move {amount}", "entries": [
        {"account": source["id"], "direction": "debit", "amount": amount},
        {"account": destination["id"], "direction": "credit", "amount": amount}]})


# --- real subprocesses ------------------------------------------------------------------------

def test_database_url() -> str:
    """The database this test runs on (test_...), for a subprocess to share it."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def subprocess_env(**extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ZENTRA_", "CELERY_"))}
    env.update({"DATABASE_URL": test_database_url(), "DJANGO_DEBUG": "1", "ZENTRA_WEBHOOK_ALLOW_PRIVATE": "1",
                "DJANGO_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def stop_process(process: subprocess.Popen, *, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it lingers; always reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class RedisServer:
    """A redis-server of the test's own, on its own port; the machine's shared one is never touched."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}")
                time.sleep(0.05)
            finally:
                client.close()
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=5)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=1)


@contextmanager
def celery_broker(url: str):
    """Point the Celery app of this process (the on_commit nudge) at `url`; restored after."""
    from zentra.celery import app

    def point(target: str) -> None:
        app.conf.broker_url = target
        app._pool = None
        app.amqp._producer_pool = None

    # Celery reads CELERY_BROKER_URL from the environment before its configuration, so a
    # developer's (or CI's) broker variable would win over the one set here.
    saved = os.environ.pop("CELERY_BROKER_URL", None)
    original = app.conf.broker_url
    point(url)
    try:
        yield app
    finally:
        point(original)
        if saved is not None:
            os.environ["CELERY_BROKER_URL"] = saved


@contextmanager
def celery_worker(broker_url: str, log_path: Path):
    """A real Celery worker on the test's database and `broker_url`, connected as the application
    role as in production (row-level security applies); stopped, and its log kept, after."""
    log = log_path.open("w")
    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "zentra", "worker", "--pool", "solo", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env=subprocess_env(CELERY_BROKER_URL=broker_url, REDIS_URL=broker_url, ZENTRA_DB_ROLE="app"))
    try:
        yield worker
    finally:
        stop_process(worker)
        log.close()
