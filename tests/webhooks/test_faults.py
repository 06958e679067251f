"""Faults that must neither lose nor duplicate a webhook (issue 5): a receiver that is down, a
worker killed mid-delivery, a broker that is down, a rollback, a receiver slower than the timeout.

Real PostgreSQL, real HTTP to local receivers, real processes (relay command, Celery worker,
a redis-server of the test's own on its own port).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from ledger.models import Account
from ledger.services.accounts import account_create
from tests.conftest import SYSTEM
from webhooks.models import Delivery, DeliveryAttempt, Event
from webhooks.services.delivery import deliveries_send, relay_once
from webhooks.services.outbox import event_emit

from .conftest import (
    PYTHON,
    ROOT,
    RedisServer,
    celery_broker,
    create_account,
    create_endpoint,
    stop_process,
    subprocess_env,
    transfer,
)
from .receiver import Reply, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def event_of(account: dict, type: str = "account.created") -> Event:
    return Event.objects.get(resource_id=account["id"], type=type)


# --- receiver down, then up ---------------------------------------------------------------------

def test_receiver_down_then_up_arrives_once_with_every_failed_attempt_recorded(tenant_a, receivers, settings):
    # given: an endpoint on a port where nothing listens yet
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [0, 0, 0, 0]
    port = free_port()
    endpoint = create_endpoint(tenant_a, f"http://127.0.0.1:{port}/hooks", event_types=["account.created"])
    account = create_account(tenant_a)
    event = event_of(account)
    delivery = Delivery.objects.get(event=event)

    # when: two sweeps while it is down
    assert relay_once() == 1
    assert relay_once() == 1

    # then: two network failures, each rescheduled, nothing lost
    delivery.refresh_from_db()
    assert delivery.status == Delivery.PENDING and delivery.attempts_count == 2
    assert delivery.lease_owner == "" and delivery.next_attempt_at is not None
    failed = list(delivery.attempts.order_by("number"))
    assert [(a.number, a.status_code) for a in failed] == [(1, 0), (2, 0)]
    for attempt in failed:
        assert attempt.error and "connect" in attempt.error.lower(), attempt.error
        assert attempt.next_attempt_at is not None and attempt.response_body == ""

    # when: the receiver comes up on that port and the relay sweeps again
    receiver = receivers(port=port)
    assert relay_once() == 1

    # then: it arrived exactly once, under the event's id, after the recorded failures
    assert len(receiver.received) == 1
    assert receiver.ids() == [event.id]
    assert json.loads(receiver.received[0]["body"])["id"] == event.id
    delivery.refresh_from_db()
    assert delivery.status == Delivery.SUCCEEDED and delivery.attempts_count == 3
    attempts = list(delivery.attempts.order_by("number"))
    assert [a.status_code for a in attempts] == [0, 0, 200]
    assert {a.request_headers["webhook-id"] for a in attempts} == {event.id}
    assert attempts[-1].next_attempt_at is None
    assert attempts[0].attempted_at <= attempts[1].attempted_at <= attempts[2].attempted_at
    assert relay_once() == 0 and len(receiver.received) == 1
    # and the API shows the whole history, oldest first
    detail = tenant_a.get(f"/v1/events/{event.id}").json()
    [shown] = [d for d in detail["deliveries"] if d["endpoint"] == endpoint["id"]]
    assert [a["status_code"] for a in shown["attempts"]] == [0, 0, 200]
    assert [a["number"] for a in shown["attempts"]] == [1, 2, 3]


# --- a worker killed mid-delivery ---------------------------------------------------------------

def test_worker_killed_mid_delivery_is_redelivered_after_its_lease_with_the_same_webhook_id(
        tenant_a, receivers, tmp_path, clock):
    # given: a receiver that holds its first request for a while
    receiver = receivers()
    receiver.responses = [Reply(200, {}, 6.0)]
    create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    account = create_account(tenant_a)
    event = event_of(account)
    delivery = Delivery.objects.get(event=event)
    log = (tmp_path / "relay.log").open("w")
    worker = subprocess.Popen([PYTHON, "manage.py", "relay_webhooks"], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, env=subprocess_env(ZENTRA_WEBHOOK_LEASE_SECONDS="2"))
    try:
        # when: the worker is killed while the receiver has its request
        assert receiver.wait_for(1, timeout=30), (tmp_path / "relay.log").read_text()
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        log.close()

    # then: the killed worker recorded nothing, and its lease still holds the delivery
    delivery.refresh_from_db()
    assert delivery.status == Delivery.PENDING and delivery.attempts_count == 0
    assert delivery.lease_owner.startswith("lease_") and delivery.lease_expires_at is not None
    assert not DeliveryAttempt.objects.filter(delivery=delivery).exists()
    if (delivery.lease_expires_at - timezone.now()).total_seconds() > 0.5:
        assert relay_once() == 0, "a delivery under a live lease was claimed again"

    # when: the lease runs out (the clock moves past it), the relay claims it again
    clock.past(delivery.lease_expires_at)
    assert relay_once() == 1, "the delivery was not claimed again after its lease ran out"

    # then: the receiver saw the same webhook-id twice, never another one for this event
    assert len(receiver.received) == 2
    assert receiver.ids() == [event.id, event.id]
    assert {json.loads(m["body"])["id"] for m in receiver.received} == {event.id}
    assert {json.loads(m["body"])["data"]["object"]["id"] for m in receiver.received} == {account["id"]}
    delivery.refresh_from_db()
    assert delivery.status == Delivery.SUCCEEDED and delivery.lease_owner == ""
    assert Delivery.objects.filter(event=event).count() == 1
    assert Delivery.objects.filter(event=event, status=Delivery.SUCCEEDED).count() == 1
    assert [(a.number, a.status_code) for a in delivery.attempts.all()] == [(1, 200)]
    assert relay_once() == 0 and len(receiver.received) == 2


# --- the broker (Redis) is down while postings happen -------------------------------------------

@pytest.fixture
def own_redis(monkeypatch):
    # Nudges may have been paused by an earlier test's dead broker: this one starts afresh.
    import webhooks.services.outbox

    monkeypatch.setattr(webhooks.services.outbox, "_nudge_paused_until", 0.0)
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_postings_succeed_while_redis_is_down_and_are_delivered_once_it_is_back(
        tenant_a, receiver, own_redis, tmp_path):
    from webhooks.tasks import relay

    # given: accounts made before anyone subscribed, and an endpoint for postings and accounts
    bank = create_account(tenant_a, account_type="external", normal_balance="debit", allow_overdraft=True)
    alice = create_account(tenant_a)
    create_endpoint(tenant_a, receiver.url, event_types=["transaction.posted", "account.created"])
    with celery_broker(own_redis.url):
        # the nudge really goes to our Redis while it is up (so "down" below is the broker going away)
        relay.apply_async(retry=False)
        assert own_redis.client().llen("celery") == 1
        own_redis.client().flushall()
        own_redis.stop()

        # when: postings happen with the broker down
        first = transfer(tenant_a, bank, alice, 100)
        second = transfer(tenant_a, bank, alice, 250)
        bob = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "customer", "customer": "cus_2"})

        # then: every posting succeeded, with its event and a pending delivery in PostgreSQL
        assert [r.status_code for r in (first, second, bob)] == [201, 201, 201], [first.content, second.content,
                                                                                   bob.content]
        expected = {event_of(first.json(), "transaction.posted").id, event_of(second.json(), "transaction.posted").id,
                    event_of(bob.json()).id}
        pending = Delivery.objects.filter(event_id__in=expected)
        assert pending.count() == 3
        assert set(pending.values_list("status", "attempts_count").distinct()) == {(Delivery.PENDING, 0)}
        assert Account.objects.get(pk=alice["id"]).posted_balance == 350
        assert receiver.received == []

        # when: the broker is back (same port) and a real Celery worker runs the relay
        own_redis.start()
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "zentra", "worker", "--pool", "solo", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=subprocess_env(CELERY_BROKER_URL=own_redis.url, REDIS_URL=own_redis.url))
        try:
            relay.apply_async(retry=False)  # the periodic sweep (beat) would send this
            arrived = receiver.wait_for(3, timeout=60)
            time.sleep(0.5)  # a duplicate, if any, would arrive now
        finally:
            stop_process(worker)
            log.close()

    # then: each event arrived exactly once
    assert arrived, (tmp_path / "worker.log").read_text()[-3000:]
    assert sorted(receiver.ids()) == sorted(expected)
    assert set(Delivery.objects.filter(event_id__in=expected).values_list("status", flat=True)) == {"succeeded"}


def test_postings_are_not_held_up_by_a_broker_that_is_down(tenant_a, receiver, own_redis):
    # given: a subscribed endpoint, and the broker gone
    create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    with celery_broker(own_redis.url):
        own_redis.stop()
        # when
        elapsed, responses = [], []
        for number in range(3):
            started = time.monotonic()
            responses.append(tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "customer",
                                                            "customer": f"cus_{number}"}))
            elapsed.append(time.monotonic() - started)
    # then: they succeeded, and the best-effort nudge did not stall them on the dead broker
    assert [r.status_code for r in responses] == [201, 201, 201]
    for response in responses:
        assert Delivery.objects.filter(event__resource_id=response.json()["id"]).count() == 1
    assert max(elapsed) < 2.0 and sum(elapsed) < 3.0, f"postings took {elapsed} s with the broker down"


# --- rollbacks ------------------------------------------------------------------------------------

class Boom(Exception):
    pass


def test_a_transaction_that_rolls_back_leaves_neither_event_nor_delivery(tenant_a, receiver):
    # given
    create_endpoint(tenant_a, receiver.url)
    events_before, deliveries_before = Event.objects.count(), Delivery.objects.count()
    # when: an event emitted in a transaction that then fails
    with pytest.raises(Boom), transaction.atomic():
        emitted = event_emit(tenant=tenant_a.tenant, type="account.frozen", resource_id="acct_rolled_back",
                             data_object={"id": "acct_rolled_back"}, actor=SYSTEM)
        assert Delivery.objects.filter(event=emitted).count() == 1  # it was there inside
        raise Boom
    # when: a service whose own savepoint committed, inside a caller that rolls back
    with pytest.raises(Boom), transaction.atomic():
        account = account_create(tenant=tenant_a.tenant, currency="USD", account_type="customer", actor=SYSTEM)
        assert Event.objects.filter(resource_id=account.id).exists()
        raise Boom
    # then
    assert not Event.objects.filter(pk=emitted.id).exists()
    assert not Account.objects.filter(pk=account.id).exists()
    assert not Event.objects.filter(resource_id=account.id).exists()
    assert (Event.objects.count(), Delivery.objects.count()) == (events_before, deliveries_before)
    assert relay_once() == 0
    assert receiver.received == []


def test_a_refused_posting_through_the_api_leaves_neither_event_nor_delivery(tenant_a, receiver):
    # given
    alice = create_account(tenant_a)
    bob = create_account(tenant_a, customer="cus_2")
    create_endpoint(tenant_a, receiver.url)
    events_before, deliveries_before = Event.objects.count(), Delivery.objects.count()
    # when
    unbalanced = tenant_a.post("/v1/transactions", {"description": "bad", "entries": [
        {"account": alice["id"], "direction": "debit", "amount": 100},
        {"account": bob["id"], "direction": "credit", "amount": 90}]})
    short = transfer(tenant_a, alice, bob, 100)  # alice holds nothing and may not overdraw
    # then
    assert unbalanced.status_code in (400, 422) and unbalanced.json()["code"] == "unbalanced_transaction"
    assert short.status_code in (400, 409, 422) and short.json()["code"] == "insufficient_funds"
    assert (Event.objects.count(), Delivery.objects.count()) == (events_before, deliveries_before)
    assert relay_once() == 0 and receiver.received == []


# --- a receiver slower than the timeout -----------------------------------------------------------

@pytest.mark.parametrize("dispatch_by", ["worker-per-batch", "two-relays"])
def test_a_slow_receiver_fails_on_the_timeout_without_blocking_another_endpoint(
        tenant_a, receivers, settings, dispatch_by):
    # given: two endpoints for the same event, one answering after 4 s with a 1 s timeout
    settings.ZENTRA_WEBHOOK_TIMEOUT_SECONDS = 1
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [60]
    slow, fast = receivers(), receivers()
    slow.default = Reply(200, {}, 4.0)
    slow_endpoint = create_endpoint(tenant_a, slow.url, event_types=["account.created"])
    fast_endpoint = create_endpoint(tenant_a, fast.url, event_types=["account.created"])
    event = event_of(create_account(tenant_a))
    slow_delivery = Delivery.objects.get(event=event, endpoint_id=slow_endpoint["id"])
    fast_delivery = Delivery.objects.get(event=event, endpoint_id=fast_endpoint["id"])
    threads: list[threading.Thread] = []
    claimed: list[int] = []

    def in_thread(target, *args) -> None:
        def run():
            try:
                target(*args)
            finally:
                connection.close()

        threads.append(threading.Thread(target=run))
        threads[-1].start()

    def send_batch(delivery_ids: list[str], owner: str) -> None:
        deliveries_send(delivery_ids=delivery_ids, owner=owner)

    def dispatch(delivery_ids: list[str], owner: str) -> None:  # as the Celery relay does: a task per batch
        in_thread(send_batch, delivery_ids, owner)

    def one_relay() -> None:
        claimed.append(relay_once(limit=1))

    started = time.monotonic()
    try:
        # when
        if dispatch_by == "worker-per-batch":
            assert relay_once(send=dispatch) == 2
        else:  # two relays side by side, one delivery each
            in_thread(one_relay)
            in_thread(one_relay)
        # then: the fast one succeeded while the slow one was still in flight
        deadline = time.monotonic() + 3
        while Delivery.objects.get(pk=fast_delivery.pk).status == Delivery.PENDING:
            assert time.monotonic() < deadline, "the fast delivery did not go out while the slow one hung"
            time.sleep(0.05)
        fast_done = time.monotonic() - started
        assert Delivery.objects.get(pk=fast_delivery.pk).status == Delivery.SUCCEEDED
        assert slow.wait_for(1, timeout=0.5)  # the slow receiver has its request...
        slow_delivery.refresh_from_db()
        assert slow_delivery.attempts_count == 0  # ...and no outcome is recorded yet
        assert any(thread.is_alive() for thread in threads)
    finally:
        for thread in threads:
            thread.join(timeout=15)
    assert fast_done < 1.0, fast_done
    if claimed:
        assert sorted(claimed) == [1, 1]
    # then: the slow one is a failure, cut at the timeout, and rescheduled
    slow_delivery.refresh_from_db()
    [failed] = slow_delivery.attempts.all()
    assert failed.status_code == 0
    assert "timed out" in failed.error, failed.error
    assert 900 <= failed.duration_ms < 3500, failed.duration_ms
    assert slow_delivery.status == Delivery.PENDING and failed.next_attempt_at is not None
    assert 55 <= (slow_delivery.next_attempt_at - timezone.now()).total_seconds() <= 73
    assert fast.ids() == [event.id] and slow.ids() == [event.id]


def test_a_receiver_trickling_its_answer_past_the_timeout_is_a_failure(tenant_a, receiver, settings):
    # given: the status line at once, then one byte every 0.4 s (each read is quick, the whole is not)
    settings.ZENTRA_WEBHOOK_TIMEOUT_SECONDS = 1
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [60]
    receiver.default = Reply(200, {}, 0.0, b"slowly", 0.4)
    create_endpoint(tenant_a, receiver.url, event_types=["account.created"])
    event = event_of(create_account(tenant_a))
    # when
    started = time.monotonic()
    assert relay_once() == 1
    elapsed = time.monotonic() - started
    # then
    delivery = Delivery.objects.get(event=event)
    [attempt] = delivery.attempts.all()
    assert delivery.status == Delivery.PENDING
    assert attempt.error and "1s" in attempt.error, attempt.error
    assert elapsed < 2.5
