from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.actors import Actor
from ledger.services.holds import hold_place
from ledger.services.postings import EntryInput
from ledger.services.transfers import ledger_transaction_post

pytestmark = pytest.mark.django_db


def held_customer(tenant_a, make_account, funding) -> str:
    account = make_account()["id"]
    ledger_transaction_post(tenant=tenant_a.tenant, actor=Actor.system("tests"),
                            entries=[EntryInput(funding, "debit", 1_000), EntryInput(account, "credit", 1_000)])
    hold_place(tenant=tenant_a.tenant, account_id=account, amount=300, actor=Actor.system("tests"),
               expires_at=timezone.now() + timedelta(hours=1))
    return account


def list_queries(tenant_a) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as captured:
        response = tenant_a.get("/v1/accounts", customer="cus_1")
    assert response.status_code == 200
    return len(captured), {a["id"]: a["balances"] for a in response.json()["data"]}


def test_a_page_of_accounts_costs_the_same_queries_whatever_its_length(tenant_a, make_account):
    # given
    funding = make_account(account_type="external", normal_balance="debit", allow_overdraft=True,
                           customer="funding")["id"]
    first = [held_customer(tenant_a, make_account, funding) for _ in range(2)]
    few, balances = list_queries(tenant_a)
    more = [held_customer(tenant_a, make_account, funding) for _ in range(6)]
    # when
    many, balances = list_queries(tenant_a)
    # then: hold totals come with the page, not one query per account
    assert many == few
    for account in first + more:
        assert balances[account] == {"posted": 700, "held": 300, "available": 700}
