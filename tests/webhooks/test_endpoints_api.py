"""The webhook endpoints API and replay, as docs/api.md describes them; bad input and other tenants'
keys are refused with problems and write nothing."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AccessDenial
from tenants.models import ApiKey
from webhooks.models import Delivery, Event, WebhookEndpoint
from webhooks.services.delivery import relay_once

from .conftest import create_account, create_endpoint
from .receiver import Reply

pytestmark = pytest.mark.django_db

ENDPOINT_FIELDS = {"id", "object", "url", "event_types", "description", "status", "disabled_reason", "created_at",
                   "last_success_at", "failing_since", "previous_secret_expires_at"}
SECRET = re.compile(r"^whsec_([A-Za-z0-9+/]+={0,2})$")
URL = "http://127.0.0.1:9/hooks"  # never called: these tests do not deliver


@pytest.fixture
def private_allowed(settings):
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True


def account_event(ctx, **fields) -> Event:
    account = create_account(ctx, **fields)
    return Event.objects.get(resource_id=account["id"], type="account.created")


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"], body
    return body


# --- create, list, retrieve, delete ------------------------------------------------------------

def test_create_answers_201_with_the_secret_shown_once(tenant_a, private_allowed):
    # when
    response = tenant_a.post("/v1/webhook_endpoints", {"url": URL, "description": "orders"})
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == ENDPOINT_FIELDS | {"secret"}
    assert body["id"].startswith("we_") and body["object"] == "webhook_endpoint"
    assert (body["url"], body["description"], body["status"]) == (URL, "orders", "enabled")
    assert body["event_types"] == ["*"]
    match = SECRET.match(body["secret"])
    assert match and len(base64.b64decode(match.group(1))) == 32
    stored = WebhookEndpoint.objects.get(pk=body["id"])
    assert stored.tenant_id == tenant_a.tenant.id and stored.secret == body["secret"]
    # the endpoint's history keeps no secret
    assert "secret" not in {f.name for f in WebhookEndpoint.history.model._meta.fields}
    # and another endpoint gets another secret
    other = create_endpoint(tenant_a, URL, event_types=["hold.*", "account.created"])
    assert other["secret"] != body["secret"] and other["event_types"] == ["hold.*", "account.created"]


def test_list_and_retrieve_never_show_the_secret(tenant_a, private_allowed):
    # given
    created = [create_endpoint(tenant_a, URL, description=f"n{i}") for i in range(2)]
    # when
    listed = tenant_a.get("/v1/webhook_endpoints")
    retrieved = tenant_a.get(f"/v1/webhook_endpoints/{created[0]['id']}")
    # then
    assert listed.status_code == 200 and retrieved.status_code == 200
    assert listed.json()["object"] == "list"
    assert {e["id"] for e in listed.json()["data"]} == {e["id"] for e in created}
    for shown in [*listed.json()["data"], retrieved.json()]:
        assert set(shown) == ENDPOINT_FIELDS
    for response in (listed, retrieved):
        text = response.content.decode()
        assert "whsec_" not in text
        assert not any(e["secret"].removeprefix("whsec_") in text for e in created)


def test_rotate_answers_the_new_secret_once_and_keeps_the_old_for_the_overlap(tenant_a, private_allowed):
    # given
    endpoint = create_endpoint(tenant_a, URL)
    # when
    response = tenant_a.post(f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == ENDPOINT_FIELDS | {"secret"} and SECRET.match(body["secret"])
    stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert stored.secret == body["secret"] and stored.previous_secret == endpoint["secret"]
    assert abs((stored.previous_secret_expires_at - timezone.now()) - timedelta(hours=24)) < timedelta(minutes=1)
    assert "whsec_" not in tenant_a.get(f"/v1/webhook_endpoints/{endpoint['id']}").content.decode()


@pytest.mark.django_db(transaction=True)
def test_delete_hides_the_endpoint_and_stops_its_deliveries(tenant_a, receivers):
    # given: an endpoint with a delivery still pending
    receiver = receivers()
    endpoint = create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    pending = account_event(tenant_a)
    # when
    response = tenant_a.client.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "deleted" and "secret" not in response.json()
    assert tenant_a.get(f"/v1/webhook_endpoints/{endpoint['id']}").status_code == 404
    assert endpoint["id"] not in {e["id"] for e in tenant_a.get("/v1/webhook_endpoints").json()["data"]}
    assert tenant_a.client.delete(f"/v1/webhook_endpoints/{endpoint['id']}").status_code == 404
    # when: more happens, and the relay runs
    later = account_event(tenant_a, customer="cus_2")
    assert relay_once() == 0
    # then: nothing new was queued for it, nothing pending was sent, its history stays
    assert not Delivery.objects.filter(event=later).exists()
    assert receiver.received == []
    assert Delivery.objects.filter(event=pending, endpoint_id=endpoint["id"]).exists()
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).deleted_at is not None
    # and it cannot be a replay target
    redeliver = tenant_a.post(f"/v1/events/{later.id}/redeliver", {"endpoint": endpoint["id"]})
    assert_problem(redeliver, 404, "not_found")


# --- replay ----------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_redeliver_to_one_endpoint_or_to_all_sends_the_same_webhook_id_again(tenant_a, receivers):
    # given: an event delivered to two subscribed endpoints; one not subscribed, one disabled
    first, second, other, off = receivers(), receivers(), receivers(), receivers()
    one = create_endpoint(tenant_a, first.url, event_types=["account.created"])
    create_endpoint(tenant_a, second.url, event_types=["account.*"])
    create_endpoint(tenant_a, other.url, event_types=["hold.*"])
    disabled = create_endpoint(tenant_a, off.url, event_types=["*"])
    WebhookEndpoint.objects.filter(pk=disabled["id"]).update(status="disabled", disabled_reason="test")
    event = account_event(tenant_a)
    assert relay_once() == 2

    # when: to one endpoint
    response = tenant_a.post(f"/v1/events/{event.id}/redeliver", {"endpoint": one["id"]})
    # then
    assert response.status_code == 202, response.content
    [queued] = response.json()["data"]
    assert queued["event"] == event.id and queued["endpoint"] == one["id"] and queued["status"] == "pending"
    delivery = Delivery.objects.get(pk=queued["id"])
    assert delivery.requested_by.startswith("api_key:")
    assert relay_once() == 1
    assert first.ids() == [event.id, event.id] and second.ids() == [event.id]
    assert first.received[0]["body"] == first.received[1]["body"]
    delivery.refresh_from_db()
    assert delivery.status == Delivery.SUCCEEDED

    # when: to all
    response = tenant_a.post(f"/v1/events/{event.id}/redeliver", {})
    # then: every enabled subscribed endpoint, and no other
    assert response.status_code == 202, response.content
    assert len(response.json()["data"]) == 2
    assert relay_once() == 2
    assert first.ids() == [event.id] * 3 and second.ids() == [event.id] * 2
    assert other.received == [] and off.received == []
    assert Delivery.objects.filter(event=event).count() == 5


@pytest.mark.django_db(transaction=True)
def test_redeliver_failed_since_queues_every_event_that_failed_since_then(tenant_a, receiver, settings):
    # given: no retries, a receiver that is failing, three failed deliveries, one of them old
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = []
    receiver.default = Reply(500)
    endpoint = create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    events = [account_event(tenant_a, customer=f"cus_{i}") for i in range(3)]
    assert relay_once() == 3
    failed = Delivery.objects.filter(endpoint_id=endpoint["id"])
    assert set(failed.values_list("status", flat=True)) == {"failed"}
    since = timezone.now() - timedelta(hours=1)
    old = failed.get(event=events[0])
    Delivery.objects.filter(pk=old.pk).update(created_at=since - timedelta(days=1),
                                              completed_at=since - timedelta(hours=20))
    # when
    response = tenant_a.post(f"/v1/webhook_endpoints/{endpoint['id']}/redeliver_failed",
                             {"since": since.isoformat()})
    # then
    assert response.status_code == 202, response.content
    queued = response.json()["data"]
    assert sorted(q["event"] for q in queued) == sorted(e.id for e in events[1:])
    assert {q["endpoint"] for q in queued} == {endpoint["id"]}
    for row in Delivery.objects.filter(pk__in=[q["id"] for q in queued]):
        assert row.redelivery_of.status == Delivery.FAILED and row.redelivery_of.event_id == row.event_id
    # when: the receiver is back
    receiver.default = Reply(200)
    assert relay_once() == 2
    # then: each arrives once more, under its own event id
    assert sorted(receiver.ids()[3:]) == sorted(e.id for e in events[1:])
    assert relay_once() == 0


@pytest.mark.django_db(transaction=True)
def test_redeliver_failed_since_counts_when_the_delivery_failed_not_when_it_was_queued(
        tenant_a, receiver, settings):
    # given: a delivery queued before T whose last retry failed after T (a long outage)
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = []
    receiver.default = Reply(500)
    endpoint = create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    event = account_event(tenant_a)
    assert relay_once() == 1
    since = timezone.now() - timedelta(hours=1)
    Delivery.objects.filter(event=event).update(created_at=since - timedelta(hours=30))
    # when
    response = tenant_a.post(f"/v1/webhook_endpoints/{endpoint['id']}/redeliver_failed",
                             {"since": since.isoformat()})
    # then: it failed since T, so it is queued again
    assert response.status_code == 202, response.content
    assert [q["event"] for q in response.json()["data"]] == [event.id], (
        "a delivery that failed after T but was created before T was not redelivered")


def test_redeliver_failed_needs_a_valid_since(tenant_a, private_allowed):
    endpoint = create_endpoint(tenant_a, URL)
    for body in ({}, {"since": "yesterday"}):
        response = tenant_a.post(f"/v1/webhook_endpoints/{endpoint['id']}/redeliver_failed", body)
        assert_problem(response, 400, "validation_error")
    assert not Delivery.objects.exists()


# --- bad input -----------------------------------------------------------------------------------

BAD_INPUT = [
    pytest.param({"url": "ftp://example.com/hooks"}, "url", id="ftp-url"),
    pytest.param({"url": "http:///hooks"}, "url", id="no-host"),
    pytest.param({"url": "hooks.example.com/in"}, "url", id="no-scheme"),
    pytest.param({"url": "http://127.0.0.1:8000/hooks"}, "url", id="loopback"),
    pytest.param({"url": "http://localhost:8000/hooks"}, "url", id="localhost"),
    pytest.param({"url": "http://10.0.0.5/hooks"}, "url", id="private-10"),
    pytest.param({"url": "http://192.168.1.20/hooks"}, "url", id="private-192"),
    pytest.param({"url": "http://169.254.169.254/latest/meta-data"}, "url", id="link-local-metadata"),
    pytest.param({"url": "http://[::1]:8000/hooks"}, "url", id="ipv6-loopback"),
    pytest.param({"url": "http://2130706433/hooks"}, "url", id="decimal-loopback"),
    pytest.param({"url": "http://user:pw@127.0.0.1/hooks"}, "url", id="credentials"),
    pytest.param({"url": URL, "event_types": ["nope.created"]}, "event_types", id="unknown-family"),
    pytest.param({"url": URL, "event_types": ["hold.nope"]}, "event_types", id="unknown-type"),
    pytest.param({"url": URL, "event_types": ["account.*", "nope.*"]}, "event_types", id="unknown-wildcard"),
    pytest.param({"url": URL, "event_types": "account.created"}, "event_types", id="types-not-a-list"),
    pytest.param({"url": URL, "event_types": []}, "event_types", id="types-empty"),
    pytest.param({"url": URL, "event_types": [7]}, "event_types", id="type-not-a-string"),
    pytest.param({"url": URL, "description": "d" * 501}, "description", id="description-501"),
    pytest.param({"event_types": ["*"]}, "url", id="no-url"),
]


@pytest.mark.parametrize(("body", "field"), BAD_INPUT)
def test_bad_input_is_a_400_problem_and_writes_nothing(tenant_a, settings, body, field):
    # given: production settings, where private addresses are refused (for the URL cases; the
    # others need a URL that passes, and no public name resolves on this machine)
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = field != "url"
    events_before = Event.objects.count()
    # when
    response = tenant_a.post("/v1/webhook_endpoints", body)
    # then
    problem = assert_problem(response, 400, "validation_error")
    assert field in {error["field"] for error in problem.get("errors", [])} or problem["detail"].startswith(field), (
        problem)
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookEndpoint.history.exists()
    assert Event.objects.count() == events_before


def test_a_private_address_is_accepted_when_allowed(tenant_a, private_allowed):
    assert create_endpoint(tenant_a, "http://127.0.0.1:8000/hooks")["status"] == "enabled"


def test_a_description_of_500_characters_is_accepted(tenant_a, private_allowed):
    assert len(create_endpoint(tenant_a, URL, description="d" * 500)["description"]) == 500


# --- other tenants, read-only keys ---------------------------------------------------------------

CROSS_TENANT = [
    pytest.param(("GET", "/v1/webhook_endpoints/{endpoint}", "{endpoint}", None), id="retrieve"),
    pytest.param(("DELETE", "/v1/webhook_endpoints/{endpoint}", "{endpoint}", None), id="delete"),
    pytest.param(("POST", "/v1/webhook_endpoints/{endpoint}/rotate_secret", "{endpoint}", None), id="rotate"),
    pytest.param(("POST", "/v1/webhook_endpoints/{endpoint}/redeliver_failed", "{endpoint}",
                  {"since": "2020-01-01T00:00:00Z"}), id="redeliver-failed"),
    pytest.param(("GET", "/v1/events/{event}", "{event}", None), id="event-retrieve"),
    pytest.param(("POST", "/v1/events/{event}/redeliver", "{event}", {}), id="event-redeliver"),
    pytest.param(("POST", "/v1/events/{b_event}/redeliver", "{endpoint}", {"endpoint": "{endpoint}"}),
                 id="own-event-to-foreign-endpoint"),
]


@pytest.mark.parametrize("case", CROSS_TENANT)
def test_tenant_b_on_tenant_a_endpoint_is_404_with_an_access_denial_and_changes_nothing(
        tenant_a, tenant_b, private_allowed, case):
    # given
    method, template, target_template, body = case
    a_endpoint = create_endpoint(tenant_a, URL)
    ids = {"endpoint": a_endpoint["id"], "event": account_event(tenant_a).id,
           "b_event": account_event(tenant_b).id}
    path, target = template.format(**ids), target_template.format(**ids)
    if body:
        body = {key: value.format(**ids) for key, value in body.items()}
    deliveries_before = Delivery.objects.count()
    # when
    if method == "GET":
        response = tenant_b.client.get(path)
    elif method == "DELETE":
        response = tenant_b.client.delete(path)
    else:
        response = tenant_b.post(path, body)
    # then
    assert_problem(response, 404, "not_found")
    denial = AccessDenial.objects.get(target=target)
    assert denial.tenant_id == tenant_b.tenant.id and denial.target_tenant_id == tenant_a.tenant.id
    assert denial.request_id == response["X-Request-Id"]
    stored = WebhookEndpoint.objects.get(pk=a_endpoint["id"])
    assert stored.secret == a_endpoint["secret"] and stored.deleted_at is None and stored.status == "enabled"
    assert Delivery.objects.count() == deliveries_before
    assert a_endpoint["id"] not in tenant_b.get("/v1/webhook_endpoints").content.decode()


def test_a_missing_endpoint_is_404_without_a_denial(tenant_b):
    response = tenant_b.client.get("/v1/webhook_endpoints/we_00000000000000000000000000")
    assert_problem(response, 404, "not_found")
    assert not AccessDenial.objects.exists()


def test_a_read_only_key_cannot_create_rotate_or_delete(tenant_a, private_allowed):
    # given
    endpoint = create_endpoint(tenant_a, URL)
    reader = tenant_a.read_only_client()
    # when
    created = reader.post("/v1/webhook_endpoints", {"url": URL}, format="json", HTTP_IDEMPOTENCY_KEY="ro-1")
    rotated = reader.post(f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret", {}, format="json",
                          HTTP_IDEMPOTENCY_KEY="ro-2")
    deleted = reader.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
    # then
    for response in (created, rotated, deleted):
        assert_problem(response, 403, "permission_denied")
    assert list(WebhookEndpoint.objects.values_list("id", "secret", "deleted_at")) == [
        (endpoint["id"], endpoint["secret"], None)]
    assert AccessDenial.objects.filter(role=ApiKey.SCOPE_READ).count() == 3
    # but it may read
    assert reader.get(f"/v1/webhook_endpoints/{endpoint['id']}").status_code == 200
