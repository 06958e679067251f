"""Balance, as-of balance and first statement page latency: 1,000 vs 1,000,000 entries.

The big account is seeded in SQL (generate_series) with triggers off for the session: the
rows are built to satisfy every invariant (sequence, running balance, dates), but checking a
million synthetic rows one by one would only time the seeding.
"""

from __future__ import annotations

import random
from datetime import timedelta

from common import median_ms, timed
from django.db import connection
from django.utils import timezone


def seed_account(tenant, entries: int, label: str):
    from audit.actors import Actor
    from ledger.models import Account
    from ledger.services.accounts import account_create

    actor = Actor.system("bench")
    account = account_create(tenant=tenant, currency="USD", account_type="customer", name=f"{label}",
                             actor=actor)
    sink = account_create(tenant=tenant, currency="USD", account_type="external", normal_balance="debit",
                          allow_overdraft=True, name=f"{label} sink", actor=actor)
    start = timezone.now() - timedelta(days=365)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            # entry k of the account: credit of (k % 997) + 1, booked k seconds after `start`
            cursor.execute("""
                INSERT INTO ledger_ledgertransaction (id, tenant_id, kind, description, metadata, effective_at,
                                                     created_at, source_request_id, actor)
                SELECT %(label)s || '_txn_' || k, %(tenant)s, 'transfer', '', '{}', %(start)s + k * interval '1 second',
                       %(start)s + k * interval '1 second', '', 'bench'
                FROM generate_series(1, %(n)s) AS k""",
                {"label": label, "tenant": tenant.id, "start": start, "n": entries})
            cursor.execute("""
                INSERT INTO ledger_ledgerentry (id, tenant_id, transaction_id, account_id, direction, amount, currency,
                                               sequence, balance_after, hash, key_id, created_at)
                SELECT %(label)s || '_ent_a_' || k, %(tenant)s, %(label)s || '_txn_' || k, %(account)s, 'credit',
                       (k %% 997) + 1, 'USD', k, sum((k %% 997) + 1) OVER (ORDER BY k), '', 'legacy',
                       %(start)s + k * interval '1 second'
                FROM generate_series(1, %(n)s) AS k
                UNION ALL
                SELECT %(label)s || '_ent_s_' || k, %(tenant)s, %(label)s || '_txn_' || k, %(sink)s, 'debit',
                       (k %% 997) + 1, 'USD', k, sum((k %% 997) + 1) OVER (ORDER BY k), '', 'legacy',
                       %(start)s + k * interval '1 second'
                FROM generate_series(1, %(n)s) AS k""",
                           {"label": label, "tenant": tenant.id, "account": account.id, "sink": sink.id,
                            "start": start, "n": entries})
            cursor.execute("""
                UPDATE ledger_account a SET posted_balance = e.balance_after, last_sequence = e.sequence
                FROM ledger_ledgerentry e WHERE e.account_id = a.id AND a.id IN (%s, %s)
                  AND e.sequence = %s""", [account.id, sink.id, entries])
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("ANALYZE ledger_ledgerentry")
        cursor.execute("ANALYZE ledger_ledgertransaction")  # as autovacuum would, after a load this size
    return Account.objects.get(pk=account.id), start


def measure(account, start, entries: int, repeat: int = 300) -> dict:
    from ledger.models import Account
    from ledger.selectors import account_balances, account_statement

    rng = random.Random(7)

    def balance():
        account_balances(Account.objects.get(pk=account.pk))

    def as_of():
        instant = start + timedelta(seconds=rng.randint(1, entries))
        account_balances(account, as_of=instant)

    def first_page():
        list(account_statement(account).order_by("-sequence")[:26])

    return {"balance": median_ms(timed(balance, repeat)), "as_of": median_ms(timed(as_of, repeat)),
            "statement": median_ms(timed(first_page, repeat))}
