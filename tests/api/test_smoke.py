import pytest

from audit.models import RequestRecord
from ledger.models import Account
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def test_post_account_enters_with_tenant_scope_emits_event_and_leaves_evidence(tenant_a):
    # when
    response = tenant_a.post("/v1/accounts", {"customer": "customer_ref", "currency": "USD",
                                              "account_type": "operating"}, key="acct_live_042")
    # then
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "active" and body["id"].startswith("acct_")
    assert body["balances"] == {"posted": 0, "held": 0, "available": 0}
    account = Account.objects.get(pk=body["id"])
    assert account.tenant == tenant_a.tenant
    event = Event.objects.get(resource_id=body["id"])
    assert event.type == "account.created" and event.data["object"]["id"] == body["id"]
    assert response["X-Request-Id"].startswith("req_")
    record = RequestRecord.objects.get(request_id=response["X-Request-Id"])
    assert (record.tenant_id, record.method, record.status, record.idempotency_key) == (
        tenant_a.tenant.id, "POST", 201, "acct_live_042")
    assert account.history.first().history_actor.startswith("api_key:")
