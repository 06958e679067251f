"""System accounts (API.md, System accounts): no API key and no operator may freeze, close or post
by hand to the tenant's reserve, settlement or payout accounts. The refusal is 403
`system_account`, leaves an AccessDenial, and changes nothing; the services that own these
accounts keep moving their money."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AccessDenial
from ledger.models import Account
from ledger.selectors import posted_balance

from .checks import ledger_snapshot
from .test_refusals import assert_problem, transfer_body

pytestmark = pytest.mark.django_db


def system_accounts(ctx) -> dict[str, Account]:
    return {a.account_type: a for a in Account.objects.filter(tenant=ctx.tenant, is_system=True, currency="USD")}


@pytest.mark.parametrize("account_type", ["reserve", "settlement", "payout"])
@pytest.mark.parametrize("action", ["freeze", "close"])
def test_api_cannot_freeze_or_close_a_system_account(tenant_a, account_type, action):
    # given
    account = system_accounts(tenant_a)[account_type]
    before = ledger_snapshot()
    # when
    response = tenant_a.post(f"/v1/accounts/{account.id}/{action}", {"reason": "fuzzing"})
    # then
    body = assert_problem(response, 403, "system_account")
    assert account.id in body["detail"]
    assert Account.objects.get(pk=account.id).status == Account.ACTIVE
    assert ledger_snapshot() == before
    denial = AccessDenial.objects.get(target=account.id)
    assert denial.tenant_id == tenant_a.tenant.id and denial.request_id == response["X-Request-Id"]


@pytest.mark.parametrize("side", ["debit", "credit"])
def test_api_cannot_post_by_hand_to_a_system_account(tenant_a, make_account, side):
    # given
    funding = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    settlement = {"id": system_accounts(tenant_a)["settlement"].id}
    before = ledger_snapshot()
    # when
    body = transfer_body(settlement, funding, 500) if side == "debit" else transfer_body(funding, settlement, 500)
    response = tenant_a.post("/v1/transactions", body)
    # then
    assert_problem(response, 403, "system_account")
    assert ledger_snapshot() == before
    assert AccessDenial.objects.filter(target=settlement["id"], request_id=response["X-Request-Id"]).count() == 1


def test_services_that_own_system_accounts_still_move_their_money(tenant_a, make_account):
    # given: a customer with funds
    funding = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    alice = make_account(customer="alice")
    assert tenant_a.post("/v1/transactions", transfer_body(funding, alice, 1_000)).status_code == 201
    # when: a hold reserves funds into the reserve system account
    hold = tenant_a.post("/v1/holds", {"account": alice["id"], "amount": 400, "currency": "USD", "expires_in": 3600})
    # then
    assert hold.status_code == 201, hold.content
    assert posted_balance(system_accounts(tenant_a)["reserve"]) == 400  # over its shards


def test_a_system_account_frozen_before_the_rule_can_be_unfrozen(tenant_a):
    # given: a reserve account left frozen by the time before this rule
    reserve = system_accounts(tenant_a)["reserve"]
    Account.objects.filter(pk=reserve.pk).update(status=Account.FROZEN)
    # when
    response = tenant_a.post(f"/v1/accounts/{reserve.id}/unfreeze", {"reason": "repair"})
    # then
    assert response.status_code == 200, response.content
    assert Account.objects.get(pk=reserve.pk).status == Account.ACTIVE


def test_admin_freeze_of_a_system_account_is_refused_with_a_message(client, tenant_a):
    # given
    client.force_login(tenant_a.member("operator"))
    reserve = system_accounts(tenant_a)["reserve"]
    # when
    response = client.post(reverse("admin:ledger_account_changelist"), {
        "action": "freeze", "_selected_action": [reserve.id], "confirm": "yes", "reason": "try"}, follow=True)
    # then
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("system_account" in m and reserve.id in m for m in messages), messages
    assert Account.objects.get(pk=reserve.pk).status == Account.ACTIVE
    assert AccessDenial.objects.filter(target=reserve.id, action="freeze account").exists()
