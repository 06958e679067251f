"""Inbound provider events: POST /v1/providers/{provider}/events, signed with the provider's
secret ("t=<unix>,v1=<hex>", 5 minutes of tolerance), deduplicated by the provider's event id.

A replay is a 200 "duplicate" that changes nothing; an event that no longer applies (reordered
delivery) is a 409 that changes nothing; a refused signature, a stale timestamp, a malformed
header or an unknown provider writes nothing but the AccessDenial kept as evidence."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from ledger.models import Hold, LedgerTransaction
from payments.adapters import sign_event
from payments.models import IntentTransition, PaymentIntent, ProviderEvent
from payments.services.sandbox import sandbox_settle_due
from tests.ledger.checks import assert_ledger_consistent
from webhooks.models import Event

from .test_support import (
    FUNDS,
    confirmed,
    deliver,
    deliver_signed,
    denials,
    event_body,
    intent_state,
    now,
    open_desk,
    problem,
    provider,
    world,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def processing(tenant_a):
    """A payment of 125,000 accepted by sandbox-a, waiting for its settlement."""
    desk = open_desk(tenant_a)
    intent = confirmed(desk, 125_000)
    desk.intent_id = intent["id"]
    desk.sandbox_a = provider(desk.tenant, "sandbox-a")
    return desk


def postings_of(intent_id: str) -> list[str]:
    intent = PaymentIntent.objects.get(pk=intent_id)
    return sorted(LedgerTransaction.objects.filter(payment_intent_id=intent.id).values_list("kind", flat=True))


def succeeded_transitions(intent_id: str) -> int:
    return IntentTransition.objects.filter(intent_id=intent_id, to_status="succeeded").count()


# --- replay --------------------------------------------------------------------------------------


def test_replay_of_a_settled_event_answers_duplicate_and_changes_nothing(processing):
    # given: the settlement event, applied once
    desk = processing
    body = event_body(desk.intent_id, event_id="pevt_settle_1")
    header = sign_event(desk.sandbox_a.secret, body)
    first = deliver(desk.sandbox_a.id, body, header)
    assert first.status_code == 200, first.content
    assert first.json() == {"id": "pevt_settle_1", "object": "provider_event", "type": "payment.settled",
                            "intent": desk.intent_id, "outcome": first.json()["outcome"], "status": "applied"}
    after_first = world(desk.tenant), intent_state(desk.intent_id), desk.balances()
    assert after_first[2] == {"customer": 75_000, "reserve": 0, "settlement": 0, "merchant": 125_000, "payout": 0}
    # when: the same event arrives again: same id, same body, same signature; then re-signed later
    replays = [deliver(desk.sandbox_a.id, body, header),
               deliver(desk.sandbox_a.id, body, sign_event(desk.sandbox_a.secret, body, now() + 1))]
    # then
    for replay in replays:
        assert replay.status_code == 200, replay.content
        assert replay.json()["status"] == "duplicate"
        assert (replay.json()["id"], replay.json()["intent"]) == ("pevt_settle_1", desk.intent_id)
    assert (world(desk.tenant), intent_state(desk.intent_id), desk.balances()) == after_first
    assert succeeded_transitions(desk.intent_id) == 1
    assert postings_of(desk.intent_id) == ["capture", "settlement"]
    assert ProviderEvent.objects.filter(provider=desk.sandbox_a).count() == 1
    assert Event.objects.filter(resource_id=desk.intent_id, type="payment_intent.succeeded").count() == 1
    # and the sandbox job has nothing left to settle
    assert sandbox_settle_due() == 0
    assert_ledger_consistent(desk.tenant)


def test_replay_with_the_same_id_but_another_type_is_a_duplicate_too(processing):
    # given
    desk = processing
    assert deliver_signed(desk.sandbox_a, event_body(desk.intent_id, event_id="pevt_x")).status_code == 200
    before = world(desk.tenant), intent_state(desk.intent_id)
    # when: the provider's event id comes back, now claiming a decline
    replay = deliver_signed(desk.sandbox_a, event_body(desk.intent_id, event_id="pevt_x", type="payment.declined"))
    # then: the id was seen: nothing applies
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate", replay.content
    assert (world(desk.tenant), intent_state(desk.intent_id)) == before
    assert PaymentIntent.objects.get(pk=desk.intent_id).status == "succeeded"


# --- reordered delivery ------------------------------------------------------------------------------


def test_reordered_delivery_after_settlement_is_refused_and_changes_nothing(processing):
    # given: settled
    desk = processing
    assert deliver_signed(desk.sandbox_a, event_body(desk.intent_id)).status_code == 200
    before = world(desk.tenant), intent_state(desk.intent_id), desk.balances()
    # when: a late decline, and a second settlement under another id
    late = [deliver_signed(desk.sandbox_a, event_body(desk.intent_id, type="payment.declined", event_id="pevt_dec")),
            deliver_signed(desk.sandbox_a, event_body(desk.intent_id, event_id="pevt_settle_again"))]
    # then
    for response in late:
        problem(response, 409, "invalid_state_transition")
    assert (world(desk.tenant), intent_state(desk.intent_id), desk.balances()) == before
    assert not ProviderEvent.objects.filter(external_id__in=["pevt_dec", "pevt_settle_again"]).exists()
    assert succeeded_transitions(desk.intent_id) == 1
    assert postings_of(desk.intent_id) == ["capture", "settlement"]


def test_declined_event_releases_the_hold_and_fails_the_intent_and_a_late_settlement_is_refused(processing):
    # given
    desk = processing
    hold_id = PaymentIntent.objects.get(pk=desk.intent_id).hold_id
    # when
    declined = deliver_signed(desk.sandbox_a, event_body(desk.intent_id, type="payment.declined"))
    # then
    assert declined.status_code == 200 and declined.json()["status"] == "applied", declined.content
    intent = desk.ctx.get(f"/v1/payment_intents/{desk.intent_id}").json()
    assert intent["status"] == "failed" and intent["failure_reason"]
    assert [(t["from"], t["to"]) for t in intent["transitions"]][-1] == ("processing", "failed")
    assert Hold.objects.get(pk=hold_id).status == "released"
    assert desk.balances() == {"customer": FUNDS, "reserve": 0, "settlement": 0, "merchant": 0, "payout": 0}
    assert Event.objects.filter(resource_id=desk.intent_id, type="payment_intent.failed").count() == 1
    # when: the settlement arrives after the decline
    before = world(desk.tenant), intent_state(desk.intent_id)
    late = deliver_signed(desk.sandbox_a, event_body(desk.intent_id))
    # then
    problem(late, 409, "invalid_state_transition")
    assert (world(desk.tenant), intent_state(desk.intent_id)) == before
    assert postings_of(desk.intent_id) == []
    assert_ledger_consistent(desk.tenant)


@pytest.mark.parametrize("case", ["wrong reference", "other provider"])
def test_event_not_matching_the_intent_is_refused_and_changes_nothing(processing, case):
    # given: an event correctly signed, but for a reference or a provider that did not carry it
    desk = processing
    if case == "wrong reference":
        prov, body = desk.sandbox_a, event_body(desk.intent_id, reference="sbx_not_this_one")
    else:
        prov, body = provider(desk.tenant, "sandbox-b"), event_body(desk.intent_id)
    before = world(desk.tenant), intent_state(desk.intent_id)
    # when
    response = deliver_signed(prov, body)
    # then
    problem(response, 409, "invalid_state_transition")
    assert (world(desk.tenant), intent_state(desk.intent_id)) == before
    assert PaymentIntent.objects.get(pk=desk.intent_id).status == "processing"


# --- refused deliveries: nothing written, evidence kept ----------------------------------------------


def _stale(prov, body):
    return prov.id, sign_event(prov.secret, body, now() - 301)


def _future(prov, body):
    # Well past the tolerance: the time between signing and checking, seconds on a busy
    # machine, brings a future timestamp closer.
    return prov.id, sign_event(prov.secret, body, now() + 330)


def _other_secret(prov, body):
    return prov.id, sign_event("prvsec_not-the-providers-secret", body)


def _other_body(prov, body):
    return prov.id, sign_event(prov.secret, body + b" ")


def _header(text):
    return lambda prov, body: (prov.id, text.replace("NOW", str(now())))


REFUSED = {
    "bad signature (another secret)": (_other_secret, "signature does not match"),
    "bad signature (body changed)": (_other_body, "signature does not match"),
    "stale timestamp": (_stale, "timestamp outside the 5-minute tolerance"),
    "timestamp from the future": (_future, "timestamp outside the 5-minute tolerance"),
    "missing header": (_header(""), "malformed signature header"),
    "malformed header": (_header("garbage"), "malformed signature header"),
    "no signature": (_header("t=NOW"), "malformed signature header"),
    "timestamp not a number": (_header("t=yesterday,v1=abcdef"), "malformed signature header"),
    "superscript digit timestamp": (_header("t=\u00b2,v1=abcdef"), "malformed signature header"),
    "non-ascii signature": (_header("t=NOW,v1=\u00e9\u00e9"), "signature does not match"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_signature_is_401_writes_nothing_and_keeps_evidence(processing, case):
    # given
    desk = processing
    make, reason = REFUSED[case]
    body = event_body(desk.intent_id)
    provider_id, header = make(desk.sandbox_a, body)
    before = world(desk.tenant), intent_state(desk.intent_id), ProviderEvent.objects.count()
    # when
    response = deliver(provider_id, body, header if case != "missing header" else None)
    # then
    body = problem(response, 401, "signature_invalid")
    assert (world(desk.tenant), intent_state(desk.intent_id), ProviderEvent.objects.count()) == before
    evidence = denials(action="provider event", target=desk.sandbox_a.id)
    assert len(evidence) == 1, evidence
    assert evidence[0].request_id and evidence[0].request_id == body["request_id"]
    assert evidence[0].tenant_id == desk.tenant.id and evidence[0].reason == reason
    assert evidence[0].actor == f"system:provider:{desk.sandbox_a.id}"


def test_unknown_provider_is_404_writes_nothing_and_keeps_evidence(processing):
    # given: a body signed with a real secret, sent to a provider id that does not exist
    desk = processing
    body = event_body(desk.intent_id)
    before = world(desk.tenant), intent_state(desk.intent_id), ProviderEvent.objects.count()
    # when
    response = deliver("prv_doesnotexist", body, sign_event(desk.sandbox_a.secret, body))
    # then
    body = problem(response, 404, "not_found")
    assert (world(desk.tenant), intent_state(desk.intent_id), ProviderEvent.objects.count()) == before
    evidence = denials(action="provider event", target="prv_doesnotexist")
    assert len(evidence) == 1 and evidence[0].reason == "unknown provider"
    assert evidence[0].request_id == body["request_id"]


def test_event_of_another_tenants_provider_about_this_intent_is_404_with_evidence(processing, tenant_b):
    # given: tenant B's provider signs a settlement of tenant A's intent
    desk = processing
    foreign = provider(tenant_b.tenant, "sandbox-a")
    before = world(desk.tenant), intent_state(desk.intent_id), ProviderEvent.objects.count()
    # when
    response = deliver_signed(foreign, event_body(desk.intent_id))
    # then
    problem(response, 404, "not_found")
    assert (world(desk.tenant), intent_state(desk.intent_id), ProviderEvent.objects.count()) == before
    evidence = denials(target=desk.intent_id)
    assert len(evidence) == 1
    assert (evidence[0].tenant_id, evidence[0].target_tenant_id) == (tenant_b.tenant.id, desk.tenant.id)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"id": "pevt_1", "type": "payment.settled"}',
                                  b'{"id": "pevt_1", "type": "payment.refunded", "intent": "pi_x"}'])
def test_signed_but_unusable_body_is_400_and_writes_nothing(processing, body):
    # given
    desk = processing
    before = world(desk.tenant), intent_state(desk.intent_id), ProviderEvent.objects.count()
    # when
    response = deliver_signed(desk.sandbox_a, body)
    # then
    problem(response, 400, "validation_error")
    assert (world(desk.tenant), intent_state(desk.intent_id), ProviderEvent.objects.count()) == before


# --- the same settlement delivered twice at once ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_id", [True, False], ids=["same event id", "different event ids"])
def test_parallel_settlements_apply_once(tenant_a, same_id):
    # given
    desk = open_desk(tenant_a)
    intent_id = confirmed(desk, 125_000)["id"]
    sandbox_a = provider(desk.tenant, "sandbox-a")
    bodies = [event_body(intent_id, event_id="pevt_same" if same_id else f"pevt_{n}") for n in range(2)]
    barrier = threading.Barrier(len(bodies))
    results: list = [None] * len(bodies)

    def send(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            response = deliver_signed(sandbox_a, bodies[index])
            body = response.json()
            results[index] = (response.status_code, body["status"] if response.status_code == 200 else body["code"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # then: one applied; the other a duplicate (same id) or refused (different id)
    expected_other = (200, "duplicate") if same_id else (409, "invalid_state_transition")
    assert sorted(results) == sorted([(200, "applied"), expected_other]), results
    assert succeeded_transitions(intent_id) == 1
    assert postings_of(intent_id) == ["capture", "settlement"]
    assert ProviderEvent.objects.filter(provider=sandbox_a).count() == 1
    assert desk.balances() == {"customer": 75_000, "reserve": 0, "settlement": 0, "merchant": 125_000, "payout": 0}
    assert_ledger_consistent(desk.tenant)
