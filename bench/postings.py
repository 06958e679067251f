"""Postings per second: the service against a raw-SQL baseline, at 1 and N processes.

Each worker process runs for a fixed time, posting transfers between random pairs of 10
accounts (unlimited overdraft, so no posting is refused). The raw baseline does the minimum
a posting needs on the same database and triggers: two balance updates (in pk order, which
locks the rows), one transaction row, two entry rows.
"""

from __future__ import annotations

import multiprocessing
import random
import time

from common import configure_django, psycopg_params

ACCOUNTS = 10


def _service_worker(args) -> int:
    tenant_id, account_ids, seconds, seed = args
    configure_django()
    from audit.actors import Actor
    from ledger.services.postings import EntryInput
    from ledger.services.transfers import ledger_transaction_post
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    actor = Actor.system("bench")
    rng = random.Random(seed)
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        source, target = rng.sample(account_ids, 2)
        amount = rng.randint(1, 10_000)
        ledger_transaction_post(tenant=tenant, actor=actor, entries=[EntryInput(source, "debit", amount),
                                                                      EntryInput(target, "credit", amount)])
        done += 1
    return done


def _raw_worker(args) -> int:
    import psycopg

    from zentra.ids import new_id

    tenant_id, account_ids, seconds, seed = args
    rng = random.Random(seed)
    done = 0
    with psycopg.connect(**{k: v for k, v in psycopg_params().items() if v is not None}) as conn:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            source, target = rng.sample(account_ids, 2)
            amount = rng.randint(1, 10_000)
            # credit-normal accounts: the debit side loses, the credit side gains
            deltas = {source: ("debit", -amount), target: ("credit", amount)}
            txn_id = new_id("txn")
            with conn.transaction():
                heads = {}
                for account_id in sorted(deltas):
                    heads[account_id] = conn.execute(
                        "UPDATE ledger_account SET posted_balance = posted_balance + %s, "
                        "last_sequence = last_sequence + 1 WHERE id = %s RETURNING posted_balance, last_sequence",
                        [deltas[account_id][1], account_id]).fetchone()
                conn.execute(
                    "INSERT INTO ledger_ledgertransaction (id, tenant_id, kind, description, metadata, effective_at, "
                    "created_at, source_request_id, actor) VALUES (%s, %s, 'transfer', '', '{}', now(), "
                    "clock_timestamp(), '', 'bench')", [txn_id, tenant_id])
                conn.execute(
                    "INSERT INTO ledger_ledgerentry (id, tenant_id, transaction_id, account_id, direction, amount, "
                    "currency, sequence, balance_after, hash, key_id, created_at) VALUES "
                    "(%s, %s, %s, %s, %s, %s, 'USD', %s, %s, '', 'legacy', clock_timestamp()), "
                    "(%s, %s, %s, %s, %s, %s, 'USD', %s, %s, '', 'legacy', clock_timestamp())",
                    [new_id("ent"), tenant_id, txn_id, source, "debit", amount, heads[source][1], heads[source][0],
                     new_id("ent"), tenant_id, txn_id, target, "credit", amount, heads[target][1], heads[target][0]])
            done += 1
    return done


def make_accounts(tenant, label: str) -> list[str]:
    from audit.actors import Actor
    from ledger.services.accounts import account_create

    return [account_create(tenant=tenant, currency="USD", account_type="operating", name=f"{label} {i}",
                           allow_overdraft=True, actor=Actor.system("bench")).id for i in range(ACCOUNTS)]


def rate(worker, tenant_id: str, account_ids: list[str], processes: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        started = time.perf_counter()
        counts = pool.map(worker, [(tenant_id, account_ids, seconds, seed) for seed in range(processes)])
        elapsed = time.perf_counter() - started
    # Workers stop at their own deadline; start-up time is excluded by dividing by `seconds`.
    del elapsed
    return sum(counts) / seconds


def run(tenant, processes_list=(1, 4), seconds: float = 8.0) -> list[dict]:
    results = []
    for processes in processes_list:
        service_accounts = make_accounts(tenant, f"svc{processes}")
        raw_accounts = make_accounts(tenant, f"raw{processes}")
        raw = rate(_raw_worker, tenant.id, raw_accounts, processes, seconds)
        service = rate(_service_worker, tenant.id, service_accounts, processes, seconds)
        results.append({"processes": processes, "service": service, "raw": raw, "ratio": service / raw})
    return results


def funded_customers(tenant, label: str, count: int) -> tuple[list[str], str]:
    """`count` customer accounts holding plenty, and a merchant: (customer ids, merchant id)."""
    from audit.actors import Actor
    from ledger.services.accounts import account_create
    from ledger.services.postings import EntryInput
    from ledger.services.transfers import ledger_transaction_post

    actor = Actor.system("bench")
    funding = account_create(tenant=tenant, currency="USD", account_type="external", normal_balance="debit",
                             allow_overdraft=True, name=f"{label} funding", actor=actor)
    merchant = account_create(tenant=tenant, currency="USD", account_type="merchant", name=f"{label} merchant",
                              actor=actor)
    customers = []
    for index in range(count):
        customer = account_create(tenant=tenant, currency="USD", account_type="customer", name=f"{label} {index}",
                                  actor=actor)
        ledger_transaction_post(tenant=tenant, actor=actor, entries=[
            EntryInput(funding.id, "debit", 10**12), EntryInput(customer.id, "credit", 10**12)])
        customers.append(customer.id)
    return customers, merchant.id
