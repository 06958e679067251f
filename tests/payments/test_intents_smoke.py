import pytest

from ledger.models import Account
from ledger.selectors import posted_balance
from payments.models import Provider
from payments.services.sandbox import sandbox_payouts_due, sandbox_settle_due

pytestmark = pytest.mark.django_db(transaction=True)


def balance(account_id):
    return posted_balance(Account.objects.get(pk=account_id))


def system(tenant, kind):
    return Account.objects.get(tenant=tenant, currency="USD", account_type=kind, is_system=True).id


def test_intent_to_payout_with_failover(tenant_a, make_account):
    # given: a funded customer, a merchant, and the first sandbox route down
    funding = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    customer = make_account()["id"]
    merchant = make_account(account_type="merchant", customer="mer_1")["id"]
    tenant_a.post("/v1/transactions", {"entries": [{"account": funding["id"], "direction": "debit", "amount": 200_000},
                                                   {"account": customer, "direction": "credit", "amount": 200_000}]})
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-a").update(outage=True, settle_delay_seconds=0)
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-b").update(settle_delay_seconds=0)
    reserve, settlement, payout_account = (system(tenant_a.tenant, k) for k in ("reserve", "settlement", "payout"))
    # when
    created = tenant_a.post("/v1/payment_intents", {"amount": 125_000, "currency": "USD", "source_account": customer,
                                                    "destination_account": merchant})
    assert created.status_code == 201, created.json()
    intent = created.json()
    confirmed = tenant_a.post(f"/v1/payment_intents/{intent['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.json()
    body = confirmed.json()
    assert body["status"] == "processing"
    assert [a["outcome"] for a in body["provider_attempts"]] == ["error", "accepted"]
    assert (balance(customer), balance(reserve)) == (75_000, 125_000)
    # then: the sandbox settles
    assert sandbox_settle_due() == 1
    settled = tenant_a.get(f"/v1/payment_intents/{intent['id']}").json()
    assert settled["status"] == "succeeded", settled
    assert (balance(reserve), balance(settlement), balance(merchant)) == (0, 0, 125_000)
    # and the merchant pays out
    payout = tenant_a.post("/v1/payouts", {"account": merchant, "amount": 125_000})
    assert payout.status_code == 201, payout.json()
    assert (balance(merchant), balance(payout_account)) == (0, 125_000)
    assert sandbox_payouts_due() == 1
    assert tenant_a.get(f"/v1/payouts/{payout.json()['id']}").json()["status"] == "paid"
    again = tenant_a.post(f"/v1/payment_intents/{intent['id']}/confirm")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state_transition"
