import pytest

from ledger.models import Account, LedgerEntry
from webhooks.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def test_post_and_reverse_a_transfer(tenant_a, make_account):
    # given
    funding = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    alice = make_account()
    # when
    response = tenant_a.post("/v1/transactions", {"description": "top up", "entries": [
        {"account": funding["id"], "direction": "debit", "amount": 5000},
        {"account": alice["id"], "direction": "credit", "amount": 5000}]})
    # then
    assert response.status_code == 201, response.json()
    txn = response.json()
    assert txn["kind"] == "transfer" and txn["status"] == "posted" and len(txn["entries"]) == 2
    assert Account.objects.get(pk=alice["id"]).posted_balance == 5000
    assert Account.objects.get(pk=funding["id"]).posted_balance == 5000
    assert Event.objects.filter(type="transaction.posted", resource_id=txn["id"]).count() == 1
    # when reversed
    reversal = tenant_a.post(f"/v1/transactions/{txn['id']}/reverse", {"reason": "duplicate"})
    assert reversal.status_code == 201, reversal.json()
    assert reversal.json()["reverses"] == txn["id"]
    assert Account.objects.get(pk=alice["id"]).posted_balance == 0
    again = tenant_a.post(f"/v1/transactions/{txn['id']}/reverse", {"reason": "again"})
    assert again.status_code == 409 and again.json()["code"] == "already_reversed"
    statement = tenant_a.get(f"/v1/accounts/{alice['id']}/entries").json()
    assert [e["balance_after"] for e in statement["data"]] == [0, 5000]
    assert tenant_a.get(f"/v1/transactions/{txn['id']}").json()["reversed_by"] == reversal.json()["id"]
    assert LedgerEntry.objects.count() == 4
