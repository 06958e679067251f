"""What goes on the wire (Standard Webhooks v1, verified with the public `standardwebhooks`
library) and what each answer of the receiver does to the delivery and to the endpoint."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from webhooks.models import Delivery, Event, WebhookEndpoint
from webhooks.services.delivery import RESPONSE_BODY_LIMIT, relay_once

from .conftest import create_account, create_endpoint
from .receiver import Reply

pytestmark = pytest.mark.django_db(transaction=True)

SIGNATURE = re.compile(r"^v1,([A-Za-z0-9+/]+={0,2})$")
ATTEMPT_FIELDS = {"number", "at", "request_headers", "status_code", "duration_ms", "response_body", "error",
                  "next_attempt_at"}


def account_event(ctx, **fields) -> Event:
    account = create_account(ctx, **fields)
    return Event.objects.get(resource_id=account["id"], type="account.created")


def signatures(message: dict) -> list[str]:
    return message["headers"]["webhook-signature"].split(" ")


def seconds_ahead(moment) -> float:
    return (moment - timezone.now()).total_seconds()


# --- signing --------------------------------------------------------------------------------------

def test_each_attempt_carries_standard_webhooks_headers_that_verify(tenant_a, receiver, settings, clock):
    # given: a first answer that fails, so the same event goes out twice
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [0, 0]
    endpoint = create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    receiver.responses = [Reply(500)]
    event = account_event(tenant_a)
    # when
    assert relay_once() == 1
    clock.forward(1.1)  # the next attempt falls in a later second
    assert relay_once() == 1
    # then
    assert len(receiver.received) == 2
    timestamps = []
    for message in receiver.received:
        headers = message["headers"]
        assert headers["webhook-id"] == event.id
        assert headers["content-type"] == "application/json"
        timestamp = int(headers["webhook-timestamp"])
        assert abs(timestamp - message["at"]) <= 1.5  # fresh: stamped when sent
        timestamps.append(timestamp)
        [signature] = signatures(message)
        match = SIGNATURE.match(signature)
        assert match and len(base64.b64decode(match.group(1))) == 32
        payload = Webhook(endpoint["secret"]).verify(message["body"], headers)
        assert payload["id"] == event.id and payload["type"] == "account.created"
        assert set(payload) >= {"id", "type", "created_at", "data"}
        assert payload["data"]["object"]["id"] == event.resource_id
        with pytest.raises(WebhookVerificationError):
            Webhook(endpoint["secret"]).verify(message["body"].replace(b"account", b"acc0unt"), headers)
    assert timestamps[1] > timestamps[0]
    assert signatures(receiver.received[0]) != signatures(receiver.received[1])
    assert receiver.received[0]["body"] == receiver.received[1]["body"]
    # and the stored request headers are the ones sent, with no secret among them
    attempts = list(Delivery.objects.get(event=event).attempts.order_by("number"))
    for attempt, message in zip(attempts, receiver.received, strict=True):
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "user-agent"):
            assert attempt.request_headers[name] == message["headers"][name]
        stored = json.dumps(attempt.request_headers)
        assert "whsec_" not in stored and endpoint["secret"].removeprefix("whsec_") not in stored
        assert "authorization" not in {name.lower() for name in attempt.request_headers}


def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_with_the_new(tenant_a, receiver):
    # given
    endpoint = create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    old = endpoint["secret"]
    # when
    rotated = tenant_a.post(f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret")
    # then: a new secret, shown this once, the old one alive for 24 hours
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    expires = parse_datetime(rotated.json()["previous_secret_expires_at"])
    assert abs(seconds_ahead(expires) - 24 * 3600) < 60
    assert "secret" not in tenant_a.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()

    # when: an event goes out during the overlap
    during = account_event(tenant_a)
    assert relay_once() == 1
    # then: two signatures; a receiver with either secret verifies it
    message = receiver.received[-1]
    assert message["headers"]["webhook-id"] == during.id
    assert len(signatures(message)) == 2 and all(SIGNATURE.match(s) for s in signatures(message))
    assert Webhook(old).verify(message["body"], message["headers"])["id"] == during.id
    assert Webhook(new).verify(message["body"], message["headers"])["id"] == during.id

    # when: the overlap has ended
    WebhookEndpoint.objects.filter(pk=endpoint["id"]).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    after = account_event(tenant_a, customer="cus_2")
    assert relay_once() == 1
    # then: only the new secret signs
    message = receiver.received[-1]
    assert message["headers"]["webhook-id"] == after.id
    assert len(signatures(message)) == 1
    assert Webhook(new).verify(message["body"], message["headers"])["id"] == after.id
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(message["body"], message["headers"])


# --- outcomes -------------------------------------------------------------------------------------

def test_410_disables_the_endpoint_at_once_and_emits_webhook_endpoint_disabled(tenant_a, receivers, settings):
    # given: the endpoint that will answer 410, and another that hears about endpoints
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    gone, watcher = receivers(), receivers()
    gone.default = Reply(410)
    gone_endpoint = create_endpoint(tenant_a, gone.url)  # every type, webhook_endpoint.disabled included
    watcher_endpoint = create_endpoint(tenant_a, watcher.url, event_types=["webhook_endpoint.*"])
    event = account_event(tenant_a)
    # when
    assert relay_once() == 1
    # then: disabled after one attempt, with its reason
    endpoint = WebhookEndpoint.objects.get(pk=gone_endpoint["id"])
    assert endpoint.status == WebhookEndpoint.DISABLED and "410" in endpoint.disabled_reason
    delivery = Delivery.objects.get(event=event, endpoint=endpoint)
    assert delivery.attempts_count == 1 and delivery.status != Delivery.PENDING
    disabled = Event.objects.get(type="webhook_endpoint.disabled", resource_id=endpoint.id)
    assert disabled.data["object"]["status"] == "disabled" and disabled.tenant_id == tenant_a.tenant.id
    assert "secret" not in disabled.data["object"]
    assert set(Delivery.objects.filter(event=disabled).values_list("endpoint_id", flat=True)) == {
        watcher_endpoint["id"]}
    # when: the relay goes on, and more happens
    later = account_event(tenant_a, customer="cus_2")
    for _ in range(5):
        if not relay_once():
            break
    # then: the watcher was told, the disabled endpoint gets nothing more
    assert disabled.id in watcher.ids()
    assert gone.ids() == [event.id]
    assert not Delivery.objects.filter(event=later, endpoint=endpoint).exists()
    assert tenant_a.get(f"/v1/webhook_endpoints/{endpoint.id}").json()["status"] == "disabled"


def test_failed_answers_are_rescheduled_honouring_retry_after_on_429_502_504_within_limits(
        tenant_a, receivers, settings):
    # given: one event, six endpoints answering differently
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [5, 300, 1800]
    settings.ZENTRA_WEBHOOK_MAX_RETRY_AFTER_SECONDS = 120
    answers = {"429": Reply(429, {"retry-after": "7"}), "502": Reply(502, {"retry-after": "7"}),
               "504": Reply(504, {"retry-after": "7"}), "503": Reply(503, {"retry-after": "7"}),
               "429-huge": Reply(429, {"retry-after": "100000"}),
               "302": Reply(302, {"location": "/moved"}, 0.0, b"moved")}
    servers, endpoints = {}, {}
    for label, answer in answers.items():
        servers[label] = receivers()
        servers[label].default = answer
        endpoints[label] = create_endpoint(tenant_a, servers[label].url, event_types=["account.created"])["id"]
    event = account_event(tenant_a)
    # when
    before = timezone.now()
    assert relay_once() == len(answers)
    after = timezone.now()

    # then: each is a failure, rescheduled
    def next_at(label):
        delivery = Delivery.objects.get(event=event, endpoint_id=endpoints[label])
        assert delivery.status == Delivery.PENDING and delivery.attempts_count == 1
        attempt = delivery.attempts.get()
        assert attempt.status_code == int(label[:3]) and attempt.error == f"HTTP {label[:3]}"
        assert attempt.next_attempt_at == delivery.next_attempt_at
        return delivery.next_attempt_at

    for label in ("429", "502", "504"):
        assert before + timedelta(seconds=7) <= next_at(label) <= after + timedelta(seconds=7), label
    # a Retry-After on another status is not honoured: the schedule (5 s plus up to 20% jitter) is
    assert before + timedelta(seconds=5) <= next_at("503") <= after + timedelta(seconds=6)
    # an outsized one is capped
    assert before + timedelta(seconds=120) <= next_at("429-huge") <= after + timedelta(seconds=120)
    # a redirect is a failure like any other, and is not followed
    assert before + timedelta(seconds=5) <= next_at("302") <= after + timedelta(seconds=6)
    assert [m["path"] for m in servers["302"].received] == ["/hooks"]
    assert WebhookEndpoint.objects.get(pk=endpoints["302"]).last_success_at is None


def test_after_the_last_retry_the_delivery_fails_and_webhook_delivery_failed_goes_elsewhere(
        tenant_a, receivers, settings):
    # given: an endpoint for everything that always fails, and one for delivery failures only
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [0, 0]
    failing, watcher = receivers(), receivers()
    failing.default = Reply(500, {}, 0.0, b"down")
    failing_endpoint = create_endpoint(tenant_a, failing.url)
    watcher_endpoint = create_endpoint(tenant_a, watcher.url, event_types=["webhook_delivery.failed"])
    event = account_event(tenant_a)
    delivery = Delivery.objects.get(event=event, endpoint_id=failing_endpoint["id"])
    # when: the first try and both retries
    for _ in range(3):
        assert relay_once() == 1
    # then
    delivery.refresh_from_db()
    assert delivery.status == Delivery.FAILED and delivery.attempts_count == 3
    assert delivery.next_attempt_at is None and delivery.completed_at is not None
    assert [a.next_attempt_at is None for a in delivery.attempts.order_by("number")] == [False, False, True]
    failed_event = Event.objects.get(type="webhook_delivery.failed", resource_id=delivery.id)
    assert failed_event.data["object"]["id"] == delivery.id
    assert failed_event.data["object"]["status"] == "failed"
    assert failed_event.data["object"]["event"] == event.id
    assert set(Delivery.objects.filter(event=failed_event).values_list("endpoint_id", flat=True)) == {
        watcher_endpoint["id"]}
    # when
    assert relay_once() == 1
    assert relay_once() == 0
    # then: the watcher got it, signed; the failing endpoint never did
    [message] = watcher.received
    payload = Webhook(watcher_endpoint["secret"]).verify(message["body"], message["headers"])
    assert payload["type"] == "webhook_delivery.failed" and payload["id"] == failed_event.id
    assert failing.ids() == [event.id] * 3
    assert WebhookEndpoint.objects.get(pk=failing_endpoint["id"]).status == WebhookEndpoint.ENABLED


def test_an_endpoint_failing_longer_than_the_limit_is_disabled_on_its_next_failure(tenant_a, receivers, settings):
    # given: one endpoint failing for two hours, one for ten minutes, one failing but about to
    # succeed, one that never failed and is about to
    settings.ZENTRA_WEBHOOK_DISABLE_AFTER_SECONDS = 3600
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [300]
    long_failing, short_failing, recovering, fresh = receivers(), receivers(), receivers(), receivers()
    long_failing.default = short_failing.default = fresh.default = Reply(500)
    ids = {name: create_endpoint(tenant_a, server.url, event_types=["account.created"])["id"]
           for name, server in (("long", long_failing), ("short", short_failing), ("recovering", recovering),
                                ("fresh", fresh))}
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk__in=[ids["long"], ids["recovering"]]).update(
        failing_since=now - timedelta(hours=2))
    WebhookEndpoint.objects.filter(pk=ids["short"]).update(failing_since=now - timedelta(minutes=10))
    account_event(tenant_a)
    # when
    assert relay_once() == 4
    # then
    endpoints = {name: WebhookEndpoint.objects.get(pk=pk) for name, pk in ids.items()}
    assert endpoints["long"].status == WebhookEndpoint.DISABLED
    assert "failed since" in endpoints["long"].disabled_reason
    assert endpoints["short"].status == WebhookEndpoint.ENABLED
    assert endpoints["short"].failing_since == now - timedelta(minutes=10)  # the streak's start is kept
    assert endpoints["recovering"].status == WebhookEndpoint.ENABLED
    assert endpoints["recovering"].failing_since is None and endpoints["recovering"].last_success_at is not None
    # a first failure starts the streak
    assert endpoints["fresh"].status == WebhookEndpoint.ENABLED and endpoints["fresh"].last_success_at is None
    assert now <= endpoints["fresh"].failing_since <= timezone.now()
    disabled = Event.objects.filter(type="webhook_endpoint.disabled")
    assert list(disabled.values_list("resource_id", flat=True)) == [ids["long"]]
    assert not Delivery.objects.filter(event__in=disabled, endpoint_id=ids["long"]).exists()


def test_attempt_history_is_in_the_event_oldest_first(tenant_a, receiver, settings):
    # given: a long error page, a slow 503, then success
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    receiver.responses = [Reply(500, {}, 0.0, b"E" * 5000), Reply(503, {}, 0.3, b"busy")]
    endpoint = create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    event = account_event(tenant_a)
    # when
    for _ in range(3):
        assert relay_once() == 1
    response = tenant_a.get(f"/v1/events/{event.id}")
    # then
    assert response.status_code == 200
    [delivery] = response.json()["deliveries"]
    assert delivery["endpoint"] == endpoint["id"] and delivery["event"] == event.id
    assert delivery["status"] == "succeeded" and delivery["attempts_count"] == 3
    attempts = delivery["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3]
    for attempt in attempts:
        assert set(attempt) == ATTEMPT_FIELDS
    ats = [parse_datetime(a["at"]) for a in attempts]
    assert ats == sorted(ats)
    assert [a["status_code"] for a in attempts] == [500, 503, 200]
    assert attempts[0]["response_body"] == "E" * RESPONSE_BODY_LIMIT  # truncated
    assert attempts[1]["response_body"] == "busy" and attempts[2]["response_body"] == "ok"
    assert [a["error"] for a in attempts] == ["HTTP 500", "HTTP 503", ""]
    assert attempts[1]["duration_ms"] >= 300
    assert all(isinstance(a["duration_ms"], int) and a["duration_ms"] >= 0 for a in attempts)
    assert attempts[0]["next_attempt_at"] and attempts[1]["next_attempt_at"] and attempts[2]["next_attempt_at"] is None
    assert parse_datetime(attempts[0]["next_attempt_at"]) <= ats[1]
    # stored beside them (admin only): the headers that were sent
    stored = Delivery.objects.get(pk=delivery["id"]).attempts.order_by("number")
    assert [a.request_headers["webhook-id"] for a in stored] == [event.id] * 3


def test_the_address_is_checked_again_when_delivering(tenant_a, receiver, settings):
    # given: an endpoint accepted while private addresses were allowed
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [300]
    create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    event = account_event(tenant_a)
    # when: they no longer are
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = False
    assert relay_once() == 1
    # then: nothing was sent, and the refusal is on record
    assert receiver.received == []
    [attempt] = Delivery.objects.get(event=event).attempts.all()
    assert attempt.status_code == 0 and "address refused" in attempt.error and "127.0.0.1" in attempt.error
