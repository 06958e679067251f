"""Through the API, served by gunicorn with zentra/gunicorn_conf.py: postings per second
(POST /v1/transactions) and hold cycles (POST /v1/holds, then its release), beside the raw
posting baseline (pgbench) at the same number of clients.

`make bench-api` also measures a grid of gunicorn workers x threads, which is how the
defaults in zentra/gunicorn_conf.py were chosen for this machine (docs/benchmarks.md).
"""

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

from common import BENCH_URL, ROOT, fresh_bench_tenant

PORT = int(os.environ.get("ZENTRA_BENCH_PORT", "8765"))


def _post(conn: http.client.HTTPConnection, raw_key: str, path: str, body: dict, expect: int) -> dict:
    """One write through the API, with its own Idempotency-Key; anything but `expect` stops the bench."""
    conn.request("POST", path, body=json.dumps(body), headers={
        "Authorization": f"Bearer {raw_key}", "Content-Type": "application/json",
        "Idempotency-Key": f"bench-{uuid.uuid4()}"})
    response = conn.getresponse()
    answer = response.read()
    if response.status != expect:
        raise RuntimeError(f"POST {path} answered {response.status}: {answer[:300]!r}")
    return json.loads(answer)


def _client(args) -> int:
    raw_key, account_ids, seconds, seed = args
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        source, target = rng.sample(account_ids, 2)
        amount = rng.randint(1, 10_000)
        _post(conn, raw_key, "/v1/transactions", {"entries": [
            {"account": source, "direction": "debit", "amount": amount},
            {"account": target, "direction": "credit", "amount": amount}]}, 201)
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


def _hold_client(args) -> int:
    """Hold cycles: place a hold on the client's own account, then release it."""
    raw_key, account_id, seconds, _ = args
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        hold = _post(conn, raw_key, "/v1/holds", {"account": account_id, "amount": 100, "expires_in": 3600}, 201)
        _post(conn, raw_key, f"/v1/holds/{hold['id']}/release", {}, 200)
        done += 1
    conn.close()
    return done


class Server:
    """gunicorn with zentra/gunicorn_conf.py (as `make serve`), workers and threads as given
    (None: the configuration's defaults)."""

    def __init__(self, workers: int | None = None, threads: int | None = None) -> None:
        self.workers, self.threads = workers, threads

    def __enter__(self) -> Server:
        env = {**os.environ, "DATABASE_URL": BENCH_URL, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench-only-secret",
               # Production requires both keys; the bench's own, so its postings chain under one key.
               "ZENTRA_LEDGER_KEY": "bench-only-ledger-key",
               "ZENTRA_SIGNING_KEY": "YmVuY2gtb25seS1zaWduaW5nLWtleS0zMi1ieXRlcyE=",
               "DJANGO_LOG_LEVEL": "WARNING", "ZENTRA_BIND": f"127.0.0.1:{PORT}",
               # One key drives it all: a budget it cannot reach, so the limiter is measured (its
               # Redis round trip is in every request) without refusing the load.
               "ZENTRA_RATE_LIMIT_PER_SECOND": "1000000", "ZENTRA_RATE_LIMIT_PER_MINUTE": "100000000"}
        if self.workers:
            env["ZENTRA_WEB_WORKERS"] = str(self.workers)
        if self.threads:
            env["ZENTRA_WEB_THREADS"] = str(self.threads)
        self.process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:zentra.gunicorn_conf",
                                         "zentra.wsgi"], cwd=ROOT, env=env, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(PORT)
        time.sleep(1)  # every worker up, not only the first
        return self

    def __exit__(self, *exc) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def _drive(client, args: list) -> float:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(args)) as pool:
        seconds = args[0][2]
        return sum(pool.map(client, args)) / seconds


def run(raw_key: str, account_ids: list[str], clients: int = 16, seconds: float = 8.0,
        workers: int | None = None, threads: int | None = None) -> float:
    """Postings per second through POST /v1/transactions from `clients` connections."""
    with Server(workers, threads):
        return _drive(_client, [(raw_key, account_ids, seconds, seed) for seed in range(clients)])


def hold_cycles(raw_key: str, account_ids: list[str], seconds: float = 8.0) -> float:
    """Hold cycles per second through the API, one client per account."""
    with Server():
        return _drive(_hold_client, [(raw_key, account_id, seconds, 0) for account_id in account_ids])


GRID = [(1, 16), (2, 8), (3, 4), (3, 8), (5, 2), (5, 4), (8, 1), (8, 2)]


def main() -> int:
    import postings
    from reconciliation import pgbench_baseline

    seconds = float(os.environ.get("ZENTRA_BENCH_SECONDS", "8"))
    tenant, raw_key = fresh_bench_tenant()
    accounts = postings.make_accounts(tenant, "http")
    customers, _ = postings.funded_customers(tenant, "http holds", 4)
    print(f"## Through the API (gunicorn, zentra/gunicorn_conf.py), {os.cpu_count()} cores, {seconds:.0f} s each")
    print("| what | clients | per second | raw postings/s (pgbench, same clients) | ratio |")
    print("|---|---:|---:|---:|---:|")
    api = run(raw_key, accounts, clients=16, seconds=seconds)
    raw16 = pgbench_baseline(seconds, clients=16) or 0
    print(f"| POST /v1/transactions | 16 | {api:.0f} | {raw16:.0f} | {api / raw16 if raw16 else 0:.3f} |", flush=True)
    cycles = hold_cycles(raw_key, customers, seconds=seconds)
    raw4 = pgbench_baseline(seconds, clients=4) or 0
    print(f"| hold cycles (place, release) | 4 | {cycles:.0f} | {raw4:.0f} | {cycles / raw4 if raw4 else 0:.3f} |")
    if os.environ.get("ZENTRA_BENCH_GRID", "1") != "0":
        print()
        print("## gunicorn workers x threads, POST /v1/transactions from 16 clients")
        print("| workers | threads | postings/s |")
        print("|---:|---:|---:|")
        for workers, threads in GRID:
            rate = run(raw_key, accounts, clients=16, seconds=seconds, workers=workers, threads=threads)
            print(f"| {workers} | {threads} | {rate:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
