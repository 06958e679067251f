"""How many statements a hold costs the database (issue 14): counted with CaptureQueriesContext
around the service call, savepoints included (inside the test's transaction the service's own
transaction is a savepoint). Each round trip is latency under the account locks."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger.models import Hold, LedgerEntry, LedgerTransaction
from ledger.services.holds import hold_capture, hold_place, hold_release, holds_expire_due
from webhooks.models import Event

from .checks import SYSTEM, customer_account, external_account, transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded(tenant_a):
    tenant = tenant_a.tenant
    bank, alice, shop = external_account(tenant), customer_account(tenant), customer_account(tenant)
    transfer(tenant, bank, alice, 100_000)
    return tenant, alice, shop


def statements(call) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        result = call()
    return result, [query["sql"] for query in queries.captured_queries]


def test_placing_a_hold_takes_at_most_six_statements_and_keeps_its_history(funded):
    tenant, alice, _ = funded
    # when
    hold, sql = statements(lambda: hold_place(tenant=tenant, account_id=alice.id, amount=1_000, actor=SYSTEM,
                                              expires_in=600))
    # then: lock, the hold with its history row, the posting, the event (and the savepoint pair)
    assert len(sql) <= 6, "\n".join(sql)
    history = Hold.history.get(id=hold.id)  # type: ignore[attr-defined]
    assert (history.history_type, history.history_change_reason, history.history_actor) == (
        "+", "placed", str(SYSTEM))
    assert (history.amount, history.status, history.account_id) == (1_000, Hold.ACTIVE, alice.id)


def test_a_final_capture_with_a_remainder_takes_at_most_nine_statements(funded):
    tenant, alice, shop = funded
    hold = hold_place(tenant=tenant, account_id=alice.id, amount=1_000, actor=SYSTEM, expires_in=600)
    # when
    captured, sql = statements(lambda: hold_capture(tenant=tenant, hold_id=hold.id, destination_account_id=shop.id,
                                                    amount=400, final=True, reason="", actor=SYSTEM))
    # then
    assert len(sql) <= 9, "\n".join(sql)
    assert (captured.captured_amount, captured.released_amount, captured.status) == (400, 600, Hold.CAPTURED)


def test_releasing_a_hold_takes_at_most_six_statements(funded):
    tenant, alice, _ = funded
    hold = hold_place(tenant=tenant, account_id=alice.id, amount=1_000, actor=SYSTEM, expires_in=600)
    # when
    released, sql = statements(lambda: hold_release(tenant=tenant, hold_id=hold.id, actor=SYSTEM))
    # then: the hold with its accounts locked in one statement, the posting, the hold with its
    # history row, the event (and the savepoint pair)
    assert len(sql) <= 6, "\n".join(sql)
    assert (released.released_amount, released.status) == (1_000, Hold.RELEASED)
    alice.refresh_from_db()
    assert alice.posted_balance == 100_000
    assert [ref.split(":")[0] for ref in released.transaction_refs] == ["hold", "release"]


def _expire_all(tenant, accounts, count, clock) -> list[str]:
    """`count` lapsed holds of 10 each over the accounts, then the expiry job's statements."""
    holds = [hold_place(tenant=tenant, account_id=accounts[index % len(accounts)].id, amount=10, actor=SYSTEM,
                        expires_in=1) for index in range(count)]
    clock.forward(2)
    expired, sql = statements(lambda: holds_expire_due(actor=SYSTEM, batch=500))
    assert expired == count
    assert set(Hold.objects.filter(pk__in=[h.id for h in holds]).values_list("status", flat=True)) == {"expired"}
    return sql


def test_the_expiry_job_costs_the_same_statements_for_three_holds_as_for_sixty(funded, clock):
    tenant, alice, shop = funded
    transfer(tenant, external_account(tenant), shop, 100_000)
    # when
    few = _expire_all(tenant, [alice, shop], 3, clock)
    many = _expire_all(tenant, [alice, shop], 60, clock)
    # then: a batch is a fixed handful of statements (lock the holds, lock the accounts, the
    # postings, the holds with their history, the events, an empty batch to finish; savepoints)
    assert len(many) == len(few) <= 10, "\n".join(many)
    # and each hold still has its own expiry transaction (two entries), history row and event
    expiries = LedgerTransaction.objects.filter(kind="expiry")
    assert expiries.count() == 63
    assert LedgerEntry.objects.filter(transaction__kind="expiry").count() == 126
    assert Event.objects.filter(type="hold.expired").count() == 63
    assert Hold.history.filter(history_change_reason="expired").count() == 63  # type: ignore[attr-defined]
    assert {e["transactions"]["release"] for e in Event.objects.filter(type="hold.expired")
            .values_list("data__object", flat=True)} == set(expiries.values_list("id", flat=True))
