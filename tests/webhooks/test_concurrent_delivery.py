"""Delivery at volume (issue 14): one relay sends its batch side by side over kept-alive
connections, and still records one attempt row per attempt and sends nothing twice. Real
receivers on local ports; nothing mocked."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.actors import Actor
from webhooks.models import Delivery, DeliveryAttempt, Event
from webhooks.services.delivery import relay_once
from webhooks.services.endpoints import endpoint_create
from webhooks.services.outbox import event_emit

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.system("concurrent-delivery-tests")


def emit(tenant, count: int) -> list[str]:
    with transaction.atomic():
        return [event_emit(tenant=tenant, type="account.created", resource_id=f"acct_{index}",
                           data_object={"id": f"acct_{index}"}, actor=ACTOR).id for index in range(count)]


def test_a_batch_goes_out_side_by_side_over_kept_alive_connections_each_event_once(tenant_a, receivers, settings):
    # given: 48 events for one endpoint whose receiver takes 0.1 s per answer and keeps connections open
    settings.ZENTRA_WEBHOOK_CONCURRENCY = 8
    settings.ZENTRA_WEBHOOK_BATCH = 64
    receiver = receivers(keep_alive=True)
    receiver.default = (200, {}, 0.1)
    endpoint_create(tenant=tenant_a.tenant, url=receiver.url, actor=ACTOR)
    events = emit(tenant_a.tenant, 48)
    # when
    assert relay_once(limit=100) == 48
    # then: every event arrived once, with its own webhook-id, and has one successful attempt
    assert sorted(receiver.ids()) == sorted(events)
    assert Delivery.objects.filter(status=Delivery.SUCCEEDED).count() == 48
    assert DeliveryAttempt.objects.count() == 48
    assert set(DeliveryAttempt.objects.values_list("number", "status_code")) == {(1, 200)}
    # and: requests were in flight together, up to the concurrency, over far fewer connections
    assert 1 < receiver.most_in_flight <= 8
    assert len({message["peer"] for message in receiver.received}) <= 8
    # and: nothing is left to send
    assert relay_once() == 0 and len(receiver.received) == 48


def test_failures_in_a_batch_are_scheduled_one_by_one_beside_the_successes(tenant_a, receivers, settings):
    # given: two endpoints, one answering 200, the other 503 then 200
    settings.ZENTRA_WEBHOOK_CONCURRENCY = 4
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [0]
    good, flaky = receivers(keep_alive=True), receivers(keep_alive=True)
    flaky.default = (503, {}, 0)
    for server in (good, flaky):
        endpoint_create(tenant=tenant_a.tenant, url=server.url, actor=ACTOR)
    events = emit(tenant_a.tenant, 5)
    # when: the first pass, then the flaky receiver recovers and the retries go out
    assert relay_once() == 10
    flaky.default = (200, {}, 0)
    assert relay_once() == 5
    # then: the good endpoint got each event once; the flaky one twice, with the same webhook-id
    assert sorted(good.ids()) == sorted(events)
    assert sorted(flaky.ids()) == sorted(events * 2)
    assert Delivery.objects.filter(status=Delivery.SUCCEEDED).count() == 10
    flaky_attempts = DeliveryAttempt.objects.filter(delivery__endpoint__url=flaky.url).order_by("delivery", "number")
    assert [(a.number, a.status_code) for a in flaky_attempts] == [(1, 503), (2, 200)] * 5
    assert not Event.objects.filter(type="webhook_delivery.failed").exists()


@pytest.mark.django_db  # inside the test's transaction, where on_commit callbacks can be captured
def test_a_transaction_recording_many_events_nudges_the_relay_once(tenant_a, receivers,
                                                                   django_capture_on_commit_callbacks):
    # given
    endpoint_create(tenant=tenant_a.tenant, url=receivers().url, actor=ACTOR)
    # when: one transaction records 20 events, each with a delivery
    with django_capture_on_commit_callbacks() as callbacks:
        emit(tenant_a.tenant, 20)
    # then: one relay task asked for, not twenty
    assert [callback.__name__ for callback in callbacks] == ["nudge_relay"]
    assert Delivery.objects.filter(status=Delivery.PENDING).count() == 20
