"""Webhook endpoints managed in the admin (created with the secret shown once, rotated, sent a
test event, their deliveries listed and redelivered) and the API's disable and enable, with a
clear refusal to send to a disabled endpoint."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AccessDenial
from webhooks.models import Delivery, Event, WebhookEndpoint
from webhooks.services.delivery import relay_once

from .conftest import create_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_allowed(settings):
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True


def test_an_owner_creates_an_endpoint_and_sees_its_secret_once(client, tenant_a):
    owner = tenant_a.member("owner")
    client.force_login(owner)
    response = client.post(reverse("admin:webhooks_webhookendpoint_add"), {
        "tenant": tenant_a.tenant.pk, "url": "http://127.0.0.1:9/owner-hooks",
        "event_types_text": "hold.*, payout.paid", "description": "finance receiver"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get(url="http://127.0.0.1:9/owner-hooks")
    assert endpoint.event_types == ["hold.*", "payout.paid"]
    assert endpoint.secret in response.content.decode()
    page = client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret not in page
    assert endpoint.history.first().history_user_id == owner.pk


def test_a_bad_url_or_filter_is_refused_on_the_form_as_in_the_api(client, tenant_a, settings):
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = False
    client.force_login(tenant_a.member("owner"))
    response = client.post(reverse("admin:webhooks_webhookendpoint_add"), {
        "tenant": tenant_a.tenant.pk, "url": "http://127.0.0.1:9/x", "event_types_text": "nonsense.*"})
    errors = response.context["adminform"].form.errors
    api = tenant_a.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/x", "event_types": ["nonsense.*"]})
    assert api.status_code == 400
    api_errors = {e["field"]: e["message"] for e in api.json()["errors"]}
    assert errors["url"] == [api_errors["url"]]
    assert not WebhookEndpoint.objects.exists()


def test_an_operator_cannot_create_endpoints_and_the_attempt_is_recorded(client, tenant_a):
    client.force_login(tenant_a.member("operator"))
    before = AccessDenial.objects.count()
    assert client.get(reverse("admin:webhooks_webhookendpoint_add")).status_code == 403
    assert AccessDenial.objects.count() == before + 1


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_signing(client, tenant_a):
    endpoint = create_endpoint(tenant_a, "http://127.0.0.1:9/rotate")
    client.force_login(tenant_a.member("owner"))
    changelist = reverse("admin:webhooks_webhookendpoint_changelist")
    selected = {"action": "rotate_secret", "_selected_action": [endpoint["id"]]}
    assert b"Yes, rotate the secret of" in client.post(changelist, selected).content
    shown = client.post(changelist, {**selected, "confirm": "yes"})
    rotated = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert rotated.previous_secret == endpoint["secret"] and rotated.secret != endpoint["secret"]
    assert rotated.secret in shown.content.decode()


def test_a_viewer_sends_a_test_event_and_sees_its_delivery_on_the_endpoint_page(client, tenant_a, receiver):
    endpoint = create_endpoint(tenant_a, receiver.url, event_types=["hold.*"])
    other = create_endpoint(tenant_a, receiver.url + "-other")
    client.force_login(tenant_a.member("viewer"))
    client.post(reverse("admin:webhooks_webhookendpoint_changelist"),
                {"action": "send_test", "_selected_action": [endpoint["id"]], "confirm": "yes"})
    test_event = Event.objects.get(type="webhook_endpoint.test")
    assert list(Delivery.objects.filter(event=test_event).values_list("endpoint_id", flat=True)) == [endpoint["id"]]
    assert other["id"] != endpoint["id"]
    assert relay_once() == 1
    assert receiver.ids() == [test_event.id]
    page = client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint["id"]])).content.decode()
    assert test_event.id in page and "HTTP 200" in page


def test_an_operator_redelivers_one_delivery_from_the_endpoint_page(client, tenant_a, receiver):
    endpoint = create_endpoint(tenant_a, receiver.url)
    tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "customer"})
    assert relay_once() >= 1
    delivery = Delivery.objects.filter(endpoint_id=endpoint["id"]).first()
    client.force_login(tenant_a.member("operator"))
    url = reverse("admin:webhooks_delivery_redeliver", args=[delivery.pk])
    assert b"Yes, redeliver" in client.get(url).content
    done = client.post(url, {"confirm": "yes", "reason": "receiver lost it"})
    assert done.status_code == 302
    assert Delivery.objects.filter(event_id=delivery.event_id, endpoint_id=endpoint["id"]).count() == 2
    client.force_login(tenant_a.member("viewer"))
    before = AccessDenial.objects.count()
    assert client.post(url, {"confirm": "yes", "reason": "forged"}).status_code == 403
    assert AccessDenial.objects.count() == before + 1


def test_disable_and_enable_through_the_api_and_no_redelivery_to_a_disabled_endpoint(tenant_a):
    endpoint = create_endpoint(tenant_a, "http://127.0.0.1:9/api")
    account = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "customer"}).json()
    event = Event.objects.get(resource_id=account["id"], type="account.created")
    disabled = tenant_a.post(f"/v1/webhook_endpoints/{endpoint['id']}/disable", {"reason": "maintenance"})
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    assert disabled.json()["disabled_reason"] == "maintenance"
    before = Delivery.objects.count()
    refused = tenant_a.post(f"/v1/events/{event.id}/redeliver", {"endpoint": endpoint["id"]})
    assert refused.status_code == 409 and refused.json()["code"] == "endpoint_disabled"
    assert "enable" in refused.json()["detail"]
    assert Delivery.objects.count() == before
    enabled = tenant_a.post(f"/v1/webhook_endpoints/{endpoint['id']}/enable", {})
    assert enabled.status_code == 200 and enabled.json()["status"] == "enabled"
    assert tenant_a.post(f"/v1/events/{event.id}/redeliver", {"endpoint": endpoint["id"]}).status_code == 202
