"""How many statements a hold costs the database (issue 14): counted with CaptureQueriesContext
around the service call, savepoints included (inside the test's transaction the service's own
transaction is a savepoint). Each round trip is latency under the account locks."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger.models import Hold
from ledger.services.holds import hold_capture, hold_place

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
