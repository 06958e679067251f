"""Payments moved out of the ledger app without losing a row.

A scratch database is migrated to the layout before the move (ledger 0009, payments inside the
ledger app) and given a tenant, accounts, a settled payment intent with its transition and
history, a settlement posting and a payout as they were then; then it is migrated to today's
layout and the same rows are read through the payments app's models. The scratch database is
this test's own (never the shared or the test database), created and dropped here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
BEFORE_THE_MOVE = ("ledger", "0009_payment_invariants")

# Runs in `manage.py shell` at the old layout, with the models of that migration state.
SEED_OLD_LAYOUT = r'''
import json
from datetime import UTC, datetime
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from ledger.chain import canonical_entry, chain_hash

apps = MigrationLoader(connection).project_state(("ledger", "0009_payment_invariants")).apps
Tenant = apps.get_model("tenants", "Tenant")
Account = apps.get_model("ledger", "Account")
LedgerTransaction = apps.get_model("ledger", "LedgerTransaction")
LedgerEntry = apps.get_model("ledger", "LedgerEntry")
Intent = apps.get_model("ledger", "PaymentIntent")
Transition = apps.get_model("ledger", "IntentTransition")
HistoricalIntent = apps.get_model("ledger", "HistoricalPaymentIntent")
Provider = apps.get_model("ledger", "Provider")
Route = apps.get_model("ledger", "ProviderRoute")
Payout = apps.get_model("ledger", "Payout")
now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

with transaction.atomic():
    tenant = Tenant.objects.create(id="tnt_layout", slug="layout", name="Layout")
    def account(id, kind, normal="credit", overdraft=False):
        return Account.objects.create(id=id, tenant=tenant, currency="USD", account_type=kind, name=id,
                                      normal_balance=normal, allow_overdraft=overdraft)
    customer = account("acct_customer", "customer")
    merchant = account("acct_merchant", "merchant")
    settlement = account("acct_settlement", "settlement", overdraft=True)
    payout_account = account("acct_payout", "payout", overdraft=True)
    provider = Provider.objects.create(id="prv_layout", tenant=tenant, name="sandbox-a", secret="prvsec_x")
    route = Route.objects.create(id="rte_layout", tenant=tenant, provider=provider, currencies=["USD"])
    intent = Intent.objects.create(id="pi_layout", tenant=tenant, amount=4200, currency="USD", source_account=customer,
                                   destination_account=merchant, status="succeeded", route=route,
                                   provider_reference="sbx_layout")
    Transition.objects.create(intent=intent, from_status="processing", to_status="succeeded", at=now,
                              actor="system:provider", reason="settled")
    HistoricalIntent.objects.create(id=intent.id, tenant=tenant, amount=4200, currency="USD",
                                    source_account=customer, destination_account=merchant, status="succeeded",
                                    history_date=now, history_type="~", history_actor="system:provider",
                                    created_at=now)
    payout = Payout.objects.create(id="po_layout", tenant=tenant, account=merchant, amount=1000, currency="USD",
                                   status="paid", provider=provider)
    heads = {}
    def post(txn_id, kind, debit, credit, amount, **cause):
        txn = LedgerTransaction.objects.create(id=txn_id, tenant=tenant, kind=kind, effective_at=now,
                                               created_at=now, **cause)
        for n, (acct, direction) in enumerate(((debit, "debit"), (credit, "credit"))):
            sequence, balance, previous = heads.get(acct.id, (0, 0, ""))
            balance += amount if direction == acct.normal_balance else -amount
            entry = LedgerEntry(id=f"ent_{txn_id}_{n}", tenant=tenant, transaction=txn, account=acct,
                                direction=direction, amount=amount, currency="USD", sequence=sequence + 1,
                                balance_after=balance, created_at=now)
            entry.hash = chain_hash(previous, canonical_entry(
                entry_id=entry.id, transaction_id=txn.id, account_id=acct.id, direction=direction, amount=amount,
                currency="USD", sequence=sequence + 1, balance_after=balance, created_at=now))
            entry.save()
            heads[acct.id] = (sequence + 1, balance, entry.hash)
    post("txn_settlement", "settlement", settlement, merchant, 4200, payment_intent=intent)
    post("txn_payout", "payout", merchant, payout_account, 1000, payout=payout)
    for acct_id, (sequence, balance, head) in heads.items():
        Account.objects.filter(pk=acct_id).update(last_sequence=sequence, posted_balance=balance, hash_head=head)
print(json.dumps({"seeded": True}))
'''

# Runs in `manage.py shell` at today's layout.
READ_NEW_LAYOUT = r'''
import json
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from ledger.models import LedgerTransaction
from payments.models import IntentTransition, PaymentIntent, Payout

intent = PaymentIntent.objects.get(pk="pi_layout")
with connection.cursor() as cursor:
    cursor.execute("""SELECT count(*) FROM pg_constraint WHERE conrelid = 'ledger_ledgertransaction'::regclass
                      AND contype = 'f' AND confrelid = 'payments_paymentintent'::regclass""")
    foreign_keys_into_payments = cursor.fetchone()[0]
    cursor.execute("SELECT to_regclass('ledger_paymentintent') IS NULL")
    old_table_gone = cursor.fetchone()[0]
print(json.dumps({
    "intent": [intent.amount, intent.status, intent.source_account_id, intent.destination_account_id, intent.route_id,
               intent.route.provider.name],
    "transitions": list(IntentTransition.objects.filter(intent=intent).values_list("from_status", "to_status")),
    "history": list(intent.history.values_list("status", "history_actor")),
    "settlement_caused_by": LedgerTransaction.objects.get(pk="txn_settlement").payment_intent_id,
    "payout": [Payout.objects.get(pk="po_layout").status,
               LedgerTransaction.objects.get(pk="txn_payout").payout_id],
    "content_types": sorted(ContentType.objects.filter(model="paymentintent").values_list("app_label", flat=True)),
    "foreign_keys_into_payments": foreign_keys_into_payments,
    "old_table_gone": old_table_gone,
}))
'''


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, f"manage.py {' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def scratch_database():
    name = f"zentra_layout_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 port=5432 user=root dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_of_the_old_layout_keeps_every_payments_row_through_the_move(scratch_database):
    # given: a database at the layout before the move, holding payments rows
    env = {**os.environ, "DATABASE_URL": f"postgres://root@127.0.0.1:5432/{scratch_database}", "DJANGO_DEBUG": "1"}
    manage(env, "migrate", "auth", "--noinput")  # Django's own apps first, whole (permission names)
    manage(env, "migrate", *BEFORE_THE_MOVE, "--noinput")
    assert json.loads(manage(env, "shell", "-c", SEED_OLD_LAYOUT).strip().splitlines()[-1]) == {"seeded": True}

    # when: it is migrated to today's layout
    manage(env, "migrate", "--noinput")

    # then: the same rows, read through the payments app; the ledger names its causes by id
    found = json.loads(manage(env, "shell", "-c", READ_NEW_LAYOUT).strip().splitlines()[-1])
    assert found == {
        "intent": [4200, "succeeded", "acct_customer", "acct_merchant", "rte_layout", "sandbox-a"],
        "transitions": [["processing", "succeeded"]],
        "history": [["succeeded", "system:provider"]],
        "settlement_caused_by": "pi_layout",
        "payout": ["paid", "po_layout"],
        "content_types": ["payments"],
        "foreign_keys_into_payments": 0,
        "old_table_gone": True,
    }
    # and the ledger it carried still verifies: balances, sequences, chain
    assert "no breaks" in manage(env, "verify_ledger", "--tenant", "layout")
