"""The payment flow of issue 6 end to end through the API, with every account's balance at
every step; failover between provider routes; the circuit breaker of a failing route."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from ledger.models import Hold, LedgerTransaction
from payments.models import PaymentIntent, Payout, ProviderAttempt, ProviderEvent
from payments.services.sandbox import sandbox_payouts_due, sandbox_settle_due
from tests.ledger.checks import assert_ledger_consistent
from webhooks.models import Event

from .test_support import (
    FUNDS,
    confirm,
    confirmed,
    create_intent,
    deliver_signed,
    event_body,
    open_desk,
    provider,
    route,
    set_provider,
)

pytestmark = pytest.mark.django_db


def event_types(resource_id: str) -> list[str]:
    events = Event.objects.filter(resource_id=resource_id).order_by("created_at", "id")
    return list(events.values_list("type", flat=True))


def statement(desk, account_id: str) -> list[tuple]:
    """The account's statement as the API shows it (newest first), with each line's posting kind."""
    response = desk.ctx.get(f"/v1/accounts/{account_id}/entries")
    assert response.status_code == 200, response.content
    kinds = dict(LedgerTransaction.objects.filter(tenant=desk.tenant).values_list("id", "kind"))
    return [(line["sequence"], line["direction"], line["amount"], line["balance_after"], kinds[line["transaction"]])
            for line in response.json()["data"]]


def verify_ledger_output(tenant) -> str:
    out = StringIO()
    call_command("verify_ledger", tenant=tenant.slug, stdout=out)  # CommandError on any break
    return out.getvalue()


@pytest.mark.django_db(transaction=True)  # verify_ledger sets its own isolation level: real commits
def test_full_flow_intent_hold_settlement_merchant_payout_with_balances_at_every_step(tenant_a):
    # given: a customer holding 200,000, a merchant, the tenant's system accounts
    desk = open_desk(tenant_a)
    start = {"customer": FUNDS, "reserve": 0, "settlement": 0, "merchant": 0, "payout": 0}
    assert desk.balances() == start

    # when: the intent is created
    intent = create_intent(desk, 125_000)
    # then: nothing moves yet
    assert intent["hold"] is None and intent["route"] is None
    assert [(t["from"], t["to"]) for t in intent["transitions"]] == [(None, "requires_confirmation")]
    assert desk.balances() == start

    # when: it is confirmed
    response = confirm(desk, intent["id"])
    # then: Customer -125000 (hold placed), Reserved +125000, carried by the first route
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "processing"
    assert desk.balances() == {"customer": 75_000, "reserve": 125_000, "settlement": 0, "merchant": 0, "payout": 0}
    hold = Hold.objects.get(pk=body["hold"])
    assert (hold.account_id, hold.amount, hold.status) == (desk.customer, 125_000, "active")
    sandbox_a = provider(desk.tenant, "sandbox-a")
    assert body["route"] == route(desk.tenant, "sandbox-a").id
    assert [(a["provider"], a["outcome"]) for a in body["provider_attempts"]] == [(sandbox_a.id, "accepted")]
    assert body["provider_reference"] and body["provider_reference"] == body["provider_attempts"][0]["reference"]
    assert {d["outcome"] for d in body["policy_decisions"]} == {"route"}

    # when: the provider reports the settlement (a signed event to the inbound endpoint)
    settled = deliver_signed(sandbox_a, event_body(intent["id"]))
    # then: hold captured to settlement (+125000), settlement credited to the merchant (back to 0)
    assert settled.status_code == 200, settled.content
    assert settled.json()["status"] == "applied" and settled.json()["intent"] == intent["id"]
    assert desk.balances() == {"customer": 75_000, "reserve": 0, "settlement": 0, "merchant": 125_000, "payout": 0}
    assert statement(desk, desk.settlement) == [(2, "debit", 125_000, 0, "settlement"),
                                                (1, "credit", 125_000, 125_000, "capture")]
    assert statement(desk, desk.reserve) == [(2, "debit", 125_000, 0, "capture"),
                                             (1, "credit", 125_000, 125_000, "hold")]
    hold.refresh_from_db()
    assert (hold.status, hold.captured_amount) == ("captured", 125_000)
    now_intent = desk.ctx.get(f"/v1/payment_intents/{intent['id']}").json()
    assert now_intent["status"] == "succeeded"
    assert [(t["from"], t["to"]) for t in now_intent["transitions"]] == [
        (None, "requires_confirmation"), ("requires_confirmation", "processing"), ("processing", "succeeded")]

    # when: the merchant pays out
    payout = desk.ctx.post("/v1/payouts", {"account": desk.merchant, "amount": 125_000})
    # then: merchant funds leave for the payout account, pending
    assert payout.status_code == 201, payout.content
    payout_id = payout.json()["id"]
    assert payout.json()["status"] == "pending"
    assert desk.balances() == {"customer": 75_000, "reserve": 0, "settlement": 0, "merchant": 0, "payout": 125_000}

    # when: the sandbox provider pays it out
    assert sandbox_payouts_due() == 1
    # then: the payout is closed (paid) and nothing else moved
    paid = desk.ctx.get(f"/v1/payouts/{payout_id}").json()
    assert paid["status"] == "paid" and paid["resolved_at"] is not None
    assert len(paid["transactions"]) == 1
    assert desk.balances() == {"customer": 75_000, "reserve": 0, "settlement": 0, "merchant": 0, "payout": 125_000}

    # and: the final statements of the customer and the merchant
    assert statement(desk, desk.customer) == [(2, "debit", 125_000, 75_000, "hold"),
                                              (1, "credit", FUNDS, FUNDS, "transfer")]
    assert statement(desk, desk.merchant) == [(2, "debit", 125_000, 0, "payout"),
                                              (1, "credit", 125_000, 125_000, "settlement")]
    # and: one event per transition
    assert event_types(intent["id"]) == ["payment_intent.created", "payment_intent.processing",
                                         "payment_intent.succeeded"]
    assert event_types(payout_id) == ["payout.created", "payout.paid"]
    # and: the ledger verifies
    assert_ledger_consistent(desk.tenant)
    assert "no breaks" in verify_ledger_output(desk.tenant)


@pytest.mark.parametrize("failure, outcome", [({"outage": True}, "error"), ({"mode": "timeout"}, "timeout")])
def test_failover_first_route_fails_second_route_settles(tenant_a, failure, outcome):
    # given: sandbox-a in an outage (or timing out)
    desk = open_desk(tenant_a)
    set_provider(desk.tenant, "sandbox-a", **failure)
    route_a, route_b = route(desk.tenant, "sandbox-a"), route(desk.tenant, "sandbox-b")
    # when
    body = confirmed(desk, 125_000)
    # then: both tries are recorded, in order, and sandbox-b carries the payment
    assert [(a["route"], a["outcome"]) for a in body["provider_attempts"]] == [
        (route_a.id, outcome), (route_b.id, "accepted")]
    assert body["provider_attempts"][0]["error"]
    assert body["route"] == route_b.id
    attempts = list(ProviderAttempt.objects.filter(intent_id=body["id"]).order_by("id"))
    assert [(a.provider.name, a.outcome) for a in attempts] == [("sandbox-a", outcome), ("sandbox-b", "accepted")]
    assert attempts[1].reference == body["provider_reference"]
    assert desk.balances() == {"customer": 75_000, "reserve": 125_000, "settlement": 0, "merchant": 0, "payout": 0}
    # when: the sandbox settles
    assert sandbox_settle_due() == 1
    # then: sandbox-b's event settled it
    assert PaymentIntent.objects.get(pk=body["id"]).status == "succeeded"
    assert list(ProviderEvent.objects.filter(intent_id=body["id"]).values_list("provider__name", "type")) == [
        ("sandbox-b", "payment.settled")]
    assert desk.balances() == {"customer": 75_000, "reserve": 0, "settlement": 0, "merchant": 125_000, "payout": 0}
    assert sandbox_settle_due() == 0  # nothing left to settle
    assert_ledger_consistent(desk.tenant)


def test_every_route_failing_fails_the_intent_and_releases_the_hold(tenant_a):
    # given: both sandboxes down
    desk = open_desk(tenant_a)
    set_provider(desk.tenant, "sandbox-a", outage=True)
    set_provider(desk.tenant, "sandbox-b", outage=True)
    # when
    body = confirmed(desk, 125_000, expect="failed")
    # then
    assert [a["outcome"] for a in body["provider_attempts"]] == ["error", "error"]
    assert body["failure_reason"]
    assert Hold.objects.get(pk=body["hold"]).status == "released"
    assert desk.balances() == {"customer": FUNDS, "reserve": 0, "settlement": 0, "merchant": 0, "payout": 0}
    assert event_types(body["id"]) == ["payment_intent.created", "payment_intent.processing",
                                       "payment_intent.failed"]
    assert_ledger_consistent(desk.tenant)


def test_provider_declining_the_payment_fails_it_without_trying_the_next_route(tenant_a):
    # given
    desk = open_desk(tenant_a)
    set_provider(desk.tenant, "sandbox-a", mode="decline")
    # when
    body = confirmed(desk, 125_000, expect="failed")
    # then: a decline is an answer, not an error: no failover
    assert [(a["route"], a["outcome"]) for a in body["provider_attempts"]] == [
        (route(desk.tenant, "sandbox-a").id, "declined")]
    assert Hold.objects.get(pk=body["hold"]).status == "released"
    assert desk.balances()["customer"] == FUNDS and desk.balances()["reserve"] == 0


def test_circuit_breaker_marks_a_failing_route_down_and_skips_it(tenant_a):
    # given: route a opens its circuit after 2 failures in a row; sandbox-a is in an outage
    desk = open_desk(tenant_a)
    route_a, route_b = route(desk.tenant, "sandbox-a"), route(desk.tenant, "sandbox-b")
    route_a.failure_threshold, route_a.cooldown_seconds = 2, 600
    route_a.save(update_fields=["failure_threshold", "cooldown_seconds"])
    set_provider(desk.tenant, "sandbox-a", outage=True)
    # when: the first confirmation fails over
    first = confirmed(desk, 1_000)
    route_a.refresh_from_db()
    # then: one failure, circuit still closed
    assert [a["outcome"] for a in first["provider_attempts"]] == ["error", "accepted"]
    assert (route_a.consecutive_failures, route_a.down_until) == (1, None)
    # when: the second one fails over too
    second = confirmed(desk, 1_000)
    route_a.refresh_from_db()
    # then: the route is down for its cooldown
    assert [a["outcome"] for a in second["provider_attempts"]] == ["error", "accepted"]
    assert route_a.consecutive_failures == 2
    assert route_a.down_until is not None and route_a.down_until > timezone.now()
    down_until = route_a.down_until
    # when: sandbox-a is back, but the circuit is open
    set_provider(desk.tenant, "sandbox-a", outage=False)
    third = confirmed(desk, 1_000)
    # then: route a is recorded as down, not called (it would have accepted), and b carries it
    assert [(a["route"], a["outcome"]) for a in third["provider_attempts"]] == [
        (route_a.id, "route_down"), (route_b.id, "accepted")]
    assert third["route"] == route_b.id
    route_a.refresh_from_db()
    assert (route_a.consecutive_failures, route_a.down_until) == (2, down_until)
    assert not ProviderAttempt.objects.filter(route=route_a, outcome="accepted").exists()
    assert ProviderAttempt.objects.filter(route=route_a).count() == 3
    # and: the money followed: three holds of 1,000
    assert desk.balances()["reserve"] == 3_000
    assert Payout.objects.count() == 0
    # and: the route's history says which payment's attempt opened the circuit, and whose it was
    opened = route_a.history.filter(down_until__isnull=False).earliest("history_date")
    assert opened.history_change_reason == f"attempt: error on {second['id']}"
    assert opened.history_actor.startswith("api_key:")


def test_route_down_is_tried_again_after_its_cooldown_and_a_success_closes_the_circuit(tenant_a, clock):
    # given: route a opened its circuit (threshold 1, cooldown 1 s); sandbox-a is back
    desk = open_desk(tenant_a)
    route_a = route(desk.tenant, "sandbox-a")
    route_a.failure_threshold, route_a.cooldown_seconds = 1, 1
    route_a.save(update_fields=["failure_threshold", "cooldown_seconds"])
    set_provider(desk.tenant, "sandbox-a", outage=True)
    assert [a["outcome"] for a in confirmed(desk, 1_000)["provider_attempts"]] == ["error", "accepted"]
    set_provider(desk.tenant, "sandbox-a", outage=False)
    assert [a["outcome"] for a in confirmed(desk, 1_000)["provider_attempts"]] == ["route_down", "accepted"]
    # when: the cooldown has passed
    route_a.refresh_from_db()
    clock.past(route_a.down_until)
    body = confirmed(desk, 1_000)
    # then: route a carries the payment again and its circuit is closed
    assert [(a["route"], a["outcome"]) for a in body["provider_attempts"]] == [(route_a.id, "accepted")]
    route_a.refresh_from_db()
    assert (route_a.consecutive_failures, route_a.down_until) == (0, None)


def test_payout_goes_to_a_provider_not_in_an_outage(tenant_a):
    # given: the merchant holds 125,000; sandbox-a is down
    desk = open_desk(tenant_a)
    confirmed(desk, 125_000)
    assert sandbox_settle_due() == 1
    set_provider(desk.tenant, "sandbox-a", outage=True)
    # when
    created = desk.ctx.post("/v1/payouts", {"account": desk.merchant, "amount": 125_000})
    assert created.status_code == 201, created.content
    assert sandbox_payouts_due() == 1
    # then: sandbox-b paid it out
    payout = Payout.objects.get(pk=created.json()["id"])
    assert (payout.status, payout.provider.name) == ("paid", "sandbox-b")
    assert desk.balances() == {"customer": 75_000, "reserve": 0, "settlement": 0, "merchant": 0, "payout": 125_000}
