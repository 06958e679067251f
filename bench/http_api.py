"""Postings per second through POST /v1/transactions, served by gunicorn."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid

from common import BENCH_URL, ROOT

PORT = int(os.environ.get("ZENTRA_BENCH_PORT", "8765"))


def _client(args) -> int:
    raw_key, account_ids, seconds, seed = args
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        source, target = rng.sample(account_ids, 2)
        amount = rng.randint(1, 10_000)
        body = json.dumps({"entries": [{"account": source, "direction": "debit", "amount": amount},
                                       {"account": target, "direction": "credit", "amount": amount}]})
        conn.request("POST", "/v1/transactions", body=body, headers={
            "Authorization": f"Bearer {raw_key}", "Content-Type": "application/json",
            "Idempotency-Key": f"bench-{uuid.uuid4()}"})
        response = conn.getresponse()
        answer = response.read()
        if response.status != 201:
            raise RuntimeError(f"POST /v1/transactions answered {response.status}: {answer[:300]!r}")
        done += 1
    conn.close()
    return done


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not listen on {port}")


def run(raw_key: str, account_ids: list[str], clients: int = 4, workers: int = 4, seconds: float = 8.0) -> float:
    env = {**os.environ, "DATABASE_URL": BENCH_URL, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench-only-secret",
           # Production requires both keys; the bench's own, so its postings chain under one key.
           "ZENTRA_LEDGER_KEY": "bench-only-ledger-key",
           "ZENTRA_SIGNING_KEY": "YmVuY2gtb25seS1zaWduaW5nLWtleS0zMi1ieXRlcyE=",
           "DJANGO_LOG_LEVEL": "WARNING",
           # One key drives it all: a budget it cannot reach, so the limiter is measured (its Redis
           # round trip is in every request) without refusing the load.
           "ZENTRA_RATE_LIMIT_PER_SECOND": "1000000", "ZENTRA_RATE_LIMIT_PER_MINUTE": "100000000"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "zentra.wsgi", "--bind", f"127.0.0.1:{PORT}", "--workers", str(workers),
         "--log-level", "warning"], cwd=ROOT, env=env, start_new_session=True)
    try:
        _wait_for_port(PORT)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(clients) as pool:
            counts = pool.map(_client, [(raw_key, account_ids, seconds, seed) for seed in range(clients)])
        return sum(counts) / seconds
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
