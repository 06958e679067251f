"""Holds through the services: placed, captured and released per second at 1 and N processes,
beside the raw posting baseline; and the expiry job releasing many expired holds.

Each worker cycles on its own customer account: place a hold, then capture it (even cycles)
or release it (odd cycles). All holds of a tenant and currency credit the same reserve
account, so that row is where parallel holds meet: the figures show its cost.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from datetime import timedelta

import postings
from common import configure_django, fresh_bench_tenant


def _holds_worker(args) -> dict:
    tenant_id, account_id, merchant_id, seconds = args
    configure_django()
    from django.utils import timezone

    from audit.actors import Actor
    from ledger.services.holds import hold_capture, hold_place, hold_release
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    actor = Actor.system("bench")
    timings = {"place": [0, 0.0], "capture": [0, 0.0], "release": [0, 0.0]}
    deadline = time.perf_counter() + seconds
    cycle = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        hold = hold_place(tenant=tenant, account_id=account_id, amount=100,
                          expires_at=timezone.now() + timedelta(hours=1), actor=actor)
        middle = time.perf_counter()
        if cycle % 2 == 0:
            hold_capture(tenant=tenant, hold_id=hold.id, destination_account_id=merchant_id, actor=actor)
            kind = "capture"
        else:
            hold_release(tenant=tenant, hold_id=hold.id, actor=actor)
            kind = "release"
        ended = time.perf_counter()
        timings["place"][0] += 1
        timings["place"][1] += middle - started
        timings[kind][0] += 1
        timings[kind][1] += ended - middle
        cycle += 1
    return timings


def run(tenant, processes_list=(1, 4), seconds: float = 8.0) -> list[dict]:
    results = []
    for processes in processes_list:
        customers, merchant_id = postings.funded_customers(tenant, f"holds {processes}", processes)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(processes) as pool:
            parts = pool.map(_holds_worker, [(tenant.id, c, merchant_id, seconds) for c in customers])
        raw_accounts = postings.make_accounts(tenant, f"holds-raw{processes}")
        raw = postings.rate(postings._raw_worker, tenant.id, raw_accounts, processes, seconds)
        row = {"processes": processes, "raw": raw}
        for kind in ("place", "capture", "release"):
            count = sum(p[kind][0] for p in parts)
            busy = sum(p[kind][1] for p in parts) / processes
            # per second of wall time, counting only the time each worker spent in this step
            row[kind] = count / busy if busy else 0.0
        row["cycles_per_second"] = sum(p["place"][0] for p in parts) / seconds
        results.append(row)
    return results


def seed_expired_holds(tenant, count: int, accounts: int = 100) -> None:
    """`count` active holds already past expiry, spread over `accounts` customer accounts, each
    with its hold posting, written in bulk SQL (triggers off for the seeding session only)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from audit.actors import Actor
    from ledger.models import Account
    from ledger.services.accounts import account_create

    actor = Actor.system("bench")
    reserve = Account.objects.get(tenant=tenant, currency="USD", account_type="reserve", is_system=True)
    customers = [account_create(tenant=tenant, currency="USD", account_type="customer", name=f"expiry {i}",
                                actor=actor).id for i in range(accounts)]
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            cursor.execute("CREATE TEMP TABLE seed_customers (n int, id varchar) ON COMMIT DROP")
            cursor.executemany("INSERT INTO seed_customers VALUES (%s, %s)", list(enumerate(customers)))
            cursor.execute("""
                CREATE TEMP TABLE seed_holds ON COMMIT DROP AS
                SELECT k, 'hold_seed_' || k AS hold_id, 'txn_seed_' || k AS txn_id, c.id AS account_id,
                       %(start)s + k * interval '1 microsecond' AS at,
                       row_number() OVER (PARTITION BY c.id ORDER BY k) AS account_seq
                FROM generate_series(1, %(count)s) AS k JOIN seed_customers c ON c.n = k %% %(accounts)s""",
                           {"count": count, "accounts": accounts, "start": now - timedelta(hours=2)})
            # each customer account: opening credit of 10**9 at sequence 1, then one hold debit per hold
            cursor.execute("""
                INSERT INTO ledger_ledgertransaction (id, tenant_id, kind, description, metadata, effective_at,
                                                     created_at, source_request_id, actor)
                SELECT 'txn_seed_open_' || n, %(tenant)s, 'transfer', 'seed', '{}', %(start)s, %(start)s, '', 'bench'
                FROM seed_customers""", {"tenant": tenant.id, "start": now - timedelta(hours=3)})
            cursor.execute("""
                INSERT INTO ledger_ledgerentry (id, tenant_id, transaction_id, account_id, direction, amount, currency,
                                               sequence, balance_after, hash, key_id, created_at)
                SELECT 'ent_seed_open_' || n, %(tenant)s, 'txn_seed_open_' || n, id, 'credit', 1000000000, 'USD', 1,
                       1000000000, '', 'legacy', %(start)s FROM seed_customers""",
                           {"tenant": tenant.id, "start": now - timedelta(hours=3)})
            cursor.execute("""
                INSERT INTO ledger_hold (id, tenant_id, account_id, reserve_account_id, amount, currency,
                                        captured_amount, released_amount, status, expires_at, reference, metadata,
                                        source_request_id, created_by, resolved_by, resolution_reason, created_at)
                SELECT hold_id, %(tenant)s, account_id, %(reserve)s, 100, 'USD', 0, 0, 'active',
                       %(expired)s, '', '{}', '', 'bench', '', '', at FROM seed_holds""",
                           {"tenant": tenant.id, "reserve": reserve.id, "expired": now - timedelta(minutes=1)})
            cursor.execute("""
                INSERT INTO ledger_ledgertransaction (id, tenant_id, kind, description, metadata, effective_at,
                                                     created_at, source_request_id, actor, hold_id)
                SELECT txn_id, %(tenant)s, 'hold', 'seed', '{}', at, at, '', 'bench', hold_id FROM seed_holds""",
                           {"tenant": tenant.id})
            cursor.execute("""
                INSERT INTO ledger_ledgerentry (id, tenant_id, transaction_id, account_id, direction, amount, currency,
                                               sequence, balance_after, hash, key_id, created_at)
                SELECT 'ent_seed_a_' || k, %(tenant)s, txn_id, account_id, 'debit', 100, 'USD', account_seq + 1,
                       1000000000 - 100 * account_seq, '', 'legacy', at FROM seed_holds
                UNION ALL
                SELECT 'ent_seed_r_' || k, %(tenant)s, txn_id, %(reserve)s, 'credit', 100, 'USD',
                       r.last_sequence + row_number() OVER (ORDER BY k),
                       r.posted_balance + 100 * row_number() OVER (ORDER BY k), '', 'legacy', at
                FROM seed_holds, ledger_account r WHERE r.id = %(reserve)s""",
                           {"tenant": tenant.id, "reserve": reserve.id})
            cursor.execute("""
                UPDATE ledger_account a SET posted_balance = e.balance_after, last_sequence = e.sequence
                FROM (SELECT DISTINCT ON (account_id) account_id, sequence, balance_after FROM ledger_ledgerentry
                      WHERE account_id IN (SELECT id FROM seed_customers UNION SELECT %(reserve)s)
                      ORDER BY account_id, sequence DESC) e
                WHERE a.id = e.account_id""", {"reserve": reserve.id})
        finally:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_hold")
        cursor.execute("ANALYZE ledger_ledgerentry")


def _expiry_worker(_) -> int:
    configure_django()
    from audit.actors import Actor
    from ledger.services.holds import holds_expire_due

    return holds_expire_due(actor=Actor.system("bench_expiry"))


def expiry_rate(processes: int) -> tuple[int, float]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        pool.map(lambda_noop, range(processes))  # start the interpreters before the clock runs
        started = time.perf_counter()
        counts = pool.map(_expiry_worker, range(processes))
        elapsed = time.perf_counter() - started
    return sum(counts), elapsed


def lambda_noop(_):
    configure_django()
    return None


def main() -> int:
    """`make bench-expiry`: the expiry job alone on its own throwaway database, beside the raw
    posting baseline (pgbench, 2 clients, the job's process count) measured in the same run."""
    from reconciliation import pgbench_baseline

    count = int(os.environ.get("ZENTRA_BENCH_EXPIRED_HOLDS", "100000"))
    seconds = float(os.environ.get("ZENTRA_BENCH_SECONDS", "8"))
    tenant, _ = fresh_bench_tenant()
    seed_expired_holds(tenant, count)
    expired, elapsed = expiry_rate(2)
    raw = pgbench_baseline(seconds, clients=2)
    print("| expiry job (2 processes, SKIP LOCKED, batches of 500) | holds expired | seconds | expiries/s "
          "| raw postings/s (pgbench, 2 clients) |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| 2 | {expired:,} | {elapsed:.1f} | {expired / elapsed:.0f} | {raw:.0f} |" if raw else
          f"| 2 | {expired:,} | {elapsed:.1f} | {expired / elapsed:.0f} | (pgbench not found) |")
    return 0 if expired == count else 1


if __name__ == "__main__":
    sys.exit(main())
