import json

import pytest
from standardwebhooks import Webhook

from webhooks.models import Delivery
from webhooks.services.delivery import relay_once

from .receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver(settings):
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True
    server = Receiver()
    yield server
    server.stop()


def test_signed_event_arrives_and_verifies_with_standardwebhooks(tenant_a, receiver):
    # given
    created = tenant_a.post("/v1/webhook_endpoints", {"url": receiver.url, "event_types": ["account.*"]})
    assert created.status_code == 201, created.json()
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    # when
    account = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "customer"}).json()
    assert relay_once() == 1
    # then
    assert len(receiver.received) == 1
    message = receiver.received[0]
    payload = Webhook(secret).verify(message["body"], message["headers"])
    assert payload["type"] == "account.created" and payload["data"]["object"]["id"] == account["id"]
    assert message["headers"]["webhook-id"] == payload["id"]
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts.get().status_code == 200
    detail = tenant_a.get(f"/v1/events/{payload['id']}").json()
    attempt = detail["deliveries"][0]["attempts"][0]
    assert attempt["status_code"] == 200
    # the attempt shows the headers sent, signature included: what the receiver verified
    sent = {name.lower(): value for name, value in attempt["request_headers"].items()}
    assert {key: sent[key] for key in ("webhook-id", "webhook-timestamp", "webhook-signature")} == {
        key: message["headers"][key] for key in ("webhook-id", "webhook-timestamp", "webhook-signature")}


def test_failure_is_retried_with_history_then_succeeds(tenant_a, receiver, settings):
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    tenant_a.post("/v1/webhook_endpoints", {"url": receiver.url})
    receiver.responses = [(500, {}, 0), (503, {}, 0)]
    tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "customer"})
    for _ in range(3):
        relay_once()
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded"
    assert [a.status_code for a in delivery.attempts.order_by("number")] == [500, 503, 200]
    assert len({m["headers"]["webhook-id"] for m in receiver.received}) == 1
    assert json.loads(receiver.received[0]["body"])["type"] == "account.created"
