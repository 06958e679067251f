
import pytest

from ledger.models import Account, Hold
from webhooks.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def funded(tenant_a, make_account):
    funding = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    customer = make_account()
    merchant = make_account(account_type="merchant", customer="mer_1")
    response = tenant_a.post("/v1/transactions", {"entries": [
        {"account": funding["id"], "direction": "debit", "amount": 10_000},
        {"account": customer["id"], "direction": "credit", "amount": 10_000}]})
    assert response.status_code == 201
    return customer["id"], merchant["id"]


def test_place_capture_partial_then_final(tenant_a, funded):
    customer, merchant = funded
    # when
    placed = tenant_a.post("/v1/holds", {"account": customer, "amount": 4_000, "expires_in": 3600, "reference": "o-1"})
    # then
    assert placed.status_code == 201, placed.json()
    hold = placed.json()
    assert hold["status"] == "active" and hold["transactions"]["created"].startswith("txn_")
    balance = tenant_a.get(f"/v1/accounts/{customer}/balance").json()
    assert (balance["posted"], balance["held"], balance["available"]) == (6_000, 4_000, 6_000)
    first = tenant_a.post(f"/v1/holds/{hold['id']}/capture", {"amount": 1_500, "destination_account": merchant,
                                                              "final": False})
    assert first.status_code == 200, first.json()
    assert first.json()["status"] == "active" and first.json()["captured_amount"] == 1_500
    final = tenant_a.post(f"/v1/holds/{hold['id']}/capture", {"amount": 500, "destination_account": merchant})
    body = final.json()
    assert (body["status"], body["captured_amount"], body["released_amount"]) == ("captured", 2_000, 2_000)
    assert len(body["transactions"]["captures"]) == 2 and body["transactions"]["release"]
    assert Account.objects.get(pk=customer).posted_balance == 8_000
    assert Account.objects.get(pk=merchant).posted_balance == 2_000
    late = tenant_a.post(f"/v1/holds/{hold['id']}/release", {"reason": "too late"})
    assert late.status_code == 409 and late.json()["code"] == "hold_not_active"
    assert Event.objects.filter(resource_id=hold["id"]).count() == 3


def test_expired_hold_counts_as_available_at_once_and_is_released_once(tenant_a, funded, clock):
    customer, merchant = funded
    placed = tenant_a.post("/v1/holds", {"account": customer, "amount": 9_000, "expires_in": 1}).json()
    clock.forward(1.1)
    # then: available again before any job ran; capture refused
    balance = tenant_a.get(f"/v1/accounts/{customer}/balance").json()
    assert (balance["posted"], balance["held"], balance["available"]) == (1_000, 0, 10_000)
    refused = tenant_a.post(f"/v1/holds/{placed['id']}/capture", {"destination_account": merchant})
    assert refused.status_code == 409 and refused.json()["code"] == "hold_not_active"
    # when: a transfer needs the lapsed funds
    spend = tenant_a.post("/v1/transactions", {"entries": [
        {"account": customer, "direction": "debit", "amount": 9_500},
        {"account": merchant, "direction": "credit", "amount": 9_500}]})
    assert spend.status_code == 201, spend.json()
    hold = Hold.objects.get(pk=placed["id"])
    assert hold.status == "expired" and hold.released_amount == 9_000
    assert Account.objects.get(pk=customer).posted_balance == 500
    from django.core.management import call_command
    call_command("expire_holds")
    assert Event.objects.filter(resource_id=placed["id"], type="hold.expired").count() == 1
