"""The account page an operator works in: the three balances explained, the holds behind the
held total, the balance over time, and a statement paged by keyset (never counted)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ledger.admin.accounts import STATEMENT_PAGE
from ledger.currencies import format_minor
from ledger.services.holds import hold_place
from tests.ledger.checks import SYSTEM, customer_account, external_account, transfer

pytestmark = pytest.mark.django_db

ENTRIES = STATEMENT_PAGE + 10


@pytest.fixture
def account(tenant_a):
    """A customer with ENTRIES credits of 1.00..ENTRIES.00 and two active holds."""
    tenant = tenant_a.tenant
    funding, alice = external_account(tenant), customer_account(tenant)
    for n in range(1, ENTRIES + 1):
        transfer(tenant, funding, alice, n * 100)
    holds = [hold_place(tenant=tenant, account_id=alice.id, amount=amount, expires_in=3600, reference=ref,
                        actor=SYSTEM) for amount, ref in ((1_500, "order 1"), (2_500, "order 2"))]
    alice.refresh_from_db()
    return alice, holds


def page(client, account, **query):
    response = client.get(reverse("admin:ledger_account_change", args=[account.id]), query)
    assert response.status_code == 200
    return response


def sequences(response) -> list[int]:
    return [row["entry"].sequence for row in response.context["statement_rows"]]


def test_the_page_shows_the_holds_behind_the_held_total_and_explains_the_balances(client, tenant_a, account):
    alice, holds = account
    client.force_login(tenant_a.member("operator"))
    # when
    html = page(client, alice).content.decode()
    # then: held 40.00 is the two holds, each listed with what remains and a link to it
    assert re.search(r"Held:</label>\s*<div class=\"readonly\">40.00 USD", html)
    for hold in holds:
        assert f'href="{reverse("admin:ledger_hold_change", args=[hold.id])}"' in html
        assert format_minor(hold.amount, "USD") in html and hold.reference in html
    assert "Holds behind the held total (2)" in html
    assert "<strong>Available</strong> is what a debit or a new hold may use" in html
    # and the balance over its latest entries is an inline chart
    assert "<svg" in html and "Balance over its last" in html


def test_the_statement_pages_by_keyset_without_counting_the_entries(client, tenant_a, account):
    alice, _ = account
    client.force_login(tenant_a.member("operator"))
    total = alice.last_sequence
    # when: the first page
    with CaptureQueriesContext(connection) as queries:
        first = page(client, alice)
    # then: the newest entries, with a link to older ones, and no COUNT over the entries
    assert sequences(first) == list(range(total, total - STATEMENT_PAGE, -1))
    assert first.context["statement_newer"] is None
    older = first.context["statement_older"]
    assert f'href="?before={older}"' in first.content.decode()
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper() and "ledgerentry" in q["sql"]]
    # when: older, then newer again
    second = page(client, alice, before=older)
    assert sequences(second) == list(range(older - 1, 0, -1))
    assert second.context["statement_older"] is None
    back = page(client, alice, after=second.context["statement_newer"])
    assert sequences(back) == sequences(first)
    # and each row carries the running balance after it
    row = first.context["statement_rows"][0]
    assert row["balance_after"] == format_minor(row["entry"].balance_after, "USD")


def test_the_account_list_explains_the_balances_under_its_title(client, tenant_a, account):
    client.force_login(tenant_a.member("viewer"))
    html = client.get(reverse("admin:ledger_account_changelist")).content.decode()
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "Posted: the ledger balance" in html and "Posted" not in title
