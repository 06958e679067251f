"""The policy engine: a denial writes nothing but its decisions; the review path (approved,
declined); velocity limits that parallel confirmations cannot exceed; the limits stored on an
account, checked by every posting; routing rules."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.utils import timezone

from audit.actors import Actor
from ledger.errors import InvalidStateTransition
from ledger.models import Account, Hold
from ledger.selectors import posted_balance
from payments.models import PaymentIntent, PolicyDecision, PolicyRule
from payments.services.intents import payment_intent_approve, payment_intent_decline
from payments.services.sandbox import sandbox_settle_due
from tests.conftest import api_client
from tests.ledger.checks import assert_ledger_consistent
from webhooks.models import Event
from zentra.errors import ValidationFailed

from .test_support import (
    FUNDS,
    confirm,
    confirmed,
    create_intent,
    fund,
    intent_state,
    new_account,
    open_desk,
    problem,
    route,
    world,
)

pytestmark = pytest.mark.django_db

REVIEWER = Actor.system("tests-reviewer")


def rule(tenant, kind: str, **params) -> PolicyRule:
    return PolicyRule.objects.create(tenant=tenant, kind=kind, params=params)


def decisions(intent_id: str) -> list[tuple]:
    return list(PolicyDecision.objects.filter(intent_id=intent_id).order_by("id").values_list(
        "rule_kind", "rule_id", "outcome"))


# --- denial -----------------------------------------------------------------------------------------


def test_amount_limit_denial_is_422_and_writes_nothing_but_the_decision(tenant_a):
    # given: at most 100,000 per payment
    desk = open_desk(tenant_a)
    limit = rule(desk.tenant, "amount_limit", min=1, max=100_000)
    intent = create_intent(desk, 125_000)
    before_world, before_intent = world(desk.tenant), intent_state(intent["id"])
    # when
    response = confirm(desk, intent["id"])
    # then: refused
    body = problem(response, 422, "policy_denied")
    assert "125000" in body["detail"]
    # and nothing written: no ledger entry, no hold, no transition, no event, still requires_confirmation
    assert world(desk.tenant) == before_world
    assert intent_state(intent["id"]) == before_intent
    assert before_intent["status"] == "requires_confirmation" and before_intent["hold"] is None
    assert not Hold.objects.filter(account_id=desk.customer).exists()
    assert desk.balances() == {"customer": FUNDS, "reserve": 0, "settlement": 0, "merchant": 0, "payout": 0}
    # but the decision is kept as evidence, and evaluation stopped at the denial
    assert decisions(intent["id"]) == [("amount_limit", limit.id, "deny")]
    decision = PolicyDecision.objects.get(intent_id=intent["id"])
    assert decision.inputs == {"amount": 125_000, "min": 1, "max": 100_000}
    assert decision.tenant_id == desk.tenant.id and decision.reason
    shown = desk.ctx.get(f"/v1/payment_intents/{intent['id']}").json()
    assert [(d["kind"], d["rule"], d["outcome"]) for d in shown["policy_decisions"]] == [
        ("amount_limit", limit.id, "deny")]
    # when: the limit is raised, the same intent confirms
    limit.params = {"max": 200_000}
    limit.save()
    again = confirm(desk, intent["id"])
    assert again.status_code == 200 and again.json()["status"] == "processing", again.content
    assert desk.balances()["reserve"] == 125_000
    assert_ledger_consistent(desk.tenant)


# --- review ----------------------------------------------------------------------------------------


@pytest.fixture
def in_review(tenant_a):
    """A payment of 125,000 from an account younger than 7 days: sent to review."""
    desk = open_desk(tenant_a)
    risk = rule(desk.tenant, "risk_new_account", amount_above=100_000, younger_than_days=7)
    body = confirmed(desk, 125_000, expect="requires_review")
    desk.intent_id, desk.risk_rule = body["id"], risk
    desk.confirm_body = body
    return desk


def test_risk_rule_sends_the_intent_to_review_with_the_hold_placed(in_review):
    desk, body = in_review, in_review.confirm_body
    assert Hold.objects.get(pk=body["hold"]).status == "active"
    assert desk.balances() == {"customer": 75_000, "reserve": 125_000, "settlement": 0, "merchant": 0, "payout": 0}
    assert body["provider_attempts"] == []  # no provider is called before the review
    assert ("risk_new_account", desk.risk_rule.id, "review") in decisions(desk.intent_id)
    assert [(t["from"], t["to"]) for t in body["transitions"]][-1] == ("requires_confirmation", "requires_review")
    assert Event.objects.filter(resource_id=desk.intent_id, type="payment_intent.requires_review").count() == 1
    # a smaller payment from the same account is not reviewed
    assert confirmed(desk, 50_000)["status"] == "processing"


def test_review_approved_moves_to_processing_then_settles(in_review):
    # given
    desk = in_review
    # when: approved without a reason, then with one
    with pytest.raises(ValidationFailed):
        payment_intent_approve(tenant=desk.tenant, intent_id=desk.intent_id, actor=REVIEWER, reason="  ")
    assert PaymentIntent.objects.get(pk=desk.intent_id).status == "requires_review"
    intent = payment_intent_approve(tenant=desk.tenant, intent_id=desk.intent_id, actor=REVIEWER,
                                    reason="customer verified by phone")
    # then: processing, carried by the first route
    assert intent.status == "processing" and intent.route_id == route(desk.tenant, "sandbox-a").id
    transition = intent.transitions.order_by("at", "id").last()
    assert (transition.from_status, transition.to_status) == ("requires_review", "processing")
    assert transition.actor == str(REVIEWER) and "customer verified by phone" in transition.reason
    assert list(intent.provider_attempts.values_list("outcome", flat=True)) == ["accepted"]
    # and a second decision on the same intent is refused
    with pytest.raises(InvalidStateTransition):
        payment_intent_decline(tenant=desk.tenant, intent_id=desk.intent_id, actor=REVIEWER, reason="changed mind")
    # when: the sandbox settles
    assert sandbox_settle_due() == 1
    # then
    assert PaymentIntent.objects.get(pk=desk.intent_id).status == "succeeded"
    assert desk.balances() == {"customer": 75_000, "reserve": 0, "settlement": 0, "merchant": 125_000, "payout": 0}
    assert_ledger_consistent(desk.tenant)


def test_review_declined_fails_the_intent_and_releases_the_hold(in_review):
    # given
    desk = in_review
    # when
    intent = payment_intent_decline(tenant=desk.tenant, intent_id=desk.intent_id, actor=REVIEWER,
                                    reason="card reported stolen")
    # then
    assert intent.status == "failed" and "card reported stolen" in intent.failure_reason
    assert Hold.objects.get(pk=intent.hold_id).status == "released"
    assert desk.balances() == {"customer": FUNDS, "reserve": 0, "settlement": 0, "merchant": 0, "payout": 0}
    assert intent.provider_attempts.count() == 0
    assert Event.objects.filter(resource_id=desk.intent_id, type="payment_intent.failed").count() == 1
    with pytest.raises(InvalidStateTransition):
        payment_intent_approve(tenant=desk.tenant, intent_id=desk.intent_id, actor=REVIEWER, reason="oops")
    assert sandbox_settle_due() == 0
    assert_ledger_consistent(desk.tenant)


def test_review_of_another_tenants_intent_is_not_found(in_review, tenant_b):
    from zentra.errors import NotFound

    before = intent_state(in_review.intent_id)
    with pytest.raises(NotFound):
        payment_intent_approve(tenant=tenant_b.tenant, intent_id=in_review.intent_id, actor=REVIEWER, reason="x")
    assert intent_state(in_review.intent_id) == before


# --- velocity under parallel confirmations ------------------------------------------------------------


def confirm_in_parallel(raw_key: str, intent_ids: list[str]) -> dict[str, tuple[int, str]]:
    """Confirm every intent at once, each from its own thread, client and database connections."""
    barrier = threading.Barrier(len(intent_ids))
    results: dict[str, tuple[int, str]] = {}

    def run(intent_id: str) -> None:
        try:
            client = api_client(raw_key)
            barrier.wait(timeout=20)
            response = client.post(f"/v1/payment_intents/{intent_id}/confirm", {}, format="json",
                                   HTTP_IDEMPOTENCY_KEY=f"confirm-{intent_id}")
            body = response.json()
            results[intent_id] = (response.status_code, body["status"] if response.status_code == 200 else body["code"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(intent_id,)) for intent_id in intent_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def assert_exactly_three_of_six(results: dict, desk) -> None:
    outcomes = sorted(results.values())
    assert outcomes == [(200, "processing")] * 3 + [(422, "policy_denied")] * 3, outcomes
    allowed = [i for i, (status, _) in results.items() if status == 200]
    denied = [i for i, (status, _) in results.items() if status != 200]
    assert set(PaymentIntent.objects.filter(pk__in=allowed).values_list("status", flat=True)) == {"processing"}
    for intent in PaymentIntent.objects.filter(pk__in=denied):
        assert (intent.status, intent.hold_id) == ("requires_confirmation", None)
        assert intent.transitions.count() == 1
    assert PolicyDecision.objects.filter(intent_id__in=denied, outcome="deny").count() == 3
    assert Hold.objects.filter(tenant=desk.tenant).count() == 3
    assert desk.balances()["reserve"] == 3_000
    assert_ledger_consistent(desk.tenant)


@pytest.mark.django_db(transaction=True)
def test_velocity_per_account_holds_under_parallel_confirmations(tenant_a):
    # given: at most 3,000 a day from one account; six payments of 1,000 waiting
    desk = open_desk(tenant_a)
    rule(desk.tenant, "velocity_account", max_per_day=3_000)
    intents = [create_intent(desk, 1_000)["id"] for _ in range(6)]
    # when
    results = confirm_in_parallel(tenant_a.raw_key, intents)
    # then: exactly three fit
    assert_exactly_three_of_six(results, desk)
    assert desk.balances()["customer"] == FUNDS - 3_000


@pytest.mark.django_db(transaction=True)
def test_velocity_per_customer_holds_across_accounts_under_parallel_confirmations(tenant_a):
    # given: at most 3,000 a day per customer; two accounts of cus_1, three payments each
    desk = open_desk(tenant_a)
    second = new_account(tenant_a, customer="cus_1")
    fund(tenant_a, desk.funding, second, FUNDS)
    other_customer = new_account(tenant_a, customer="cus_2")
    fund(tenant_a, desk.funding, other_customer, FUNDS)
    rule(desk.tenant, "velocity_customer", max_per_day=3_000)
    intents = [create_intent(desk, 1_000, source=source)["id"] for source in (desk.customer, second) * 3]
    # when
    results = confirm_in_parallel(tenant_a.raw_key, intents)
    # then: three for the customer in all, across both accounts
    assert_exactly_three_of_six(results, desk)
    assert desk.balances()["customer"] + posted_balance(Account.objects.get(pk=second)) == 2 * FUNDS - 3_000
    # and another customer has its own allowance
    assert confirmed(desk, 3_000, source=other_customer)["status"] == "processing"


# --- limits stored on the account, checked by every posting ---------------------------------------------


def debit(desk, amount: int):
    return desk.ctx.post("/v1/transactions", {"entries": [
        {"account": desk.customer, "direction": "debit", "amount": amount},
        {"account": desk.merchant, "direction": "credit", "amount": amount}]})


def test_account_max_single_debit_refuses_a_plain_posting_and_an_intent(tenant_a):
    # given
    desk = open_desk(tenant_a)
    Account.objects.filter(pk=desk.customer).update(max_single_debit=50_000)
    before = world(desk.tenant)
    # when / then: a plain transfer above the limit
    problem(debit(desk, 50_001), 422, "policy_denied")
    assert world(desk.tenant) == before
    # and a payment above the limit (its hold is a debit of the account)
    intent = create_intent(desk, 60_000)
    before = world(desk.tenant), intent_state(intent["id"])
    problem(confirm(desk, intent["id"]), 422, "policy_denied")
    assert (world(desk.tenant), intent_state(intent["id"])) == before
    # and at the limit it passes
    assert debit(desk, 50_000).status_code == 201
    assert desk.balances()["customer"] == FUNDS - 50_000


def test_account_max_daily_debit_refuses_what_would_exceed_the_day(tenant_a):
    # given
    desk = open_desk(tenant_a)
    Account.objects.filter(pk=desk.customer).update(max_daily_debit=80_000)
    assert debit(desk, 50_000).status_code == 201
    before = world(desk.tenant)
    # when / then: 50,000 + 40,000 > 80,000
    problem(debit(desk, 40_000), 422, "policy_denied")
    assert world(desk.tenant) == before
    # and a payment's hold counts against the same limit
    intent = create_intent(desk, 30_001)
    before = world(desk.tenant), intent_state(intent["id"])
    problem(confirm(desk, intent["id"]), 422, "policy_denied")
    assert (world(desk.tenant), intent_state(intent["id"])) == before
    # and what fits passes
    assert debit(desk, 30_000).status_code == 201
    assert desk.balances()["customer"] == FUNDS - 80_000


# --- routing ------------------------------------------------------------------------------------------


def test_routing_rule_choosing_sandbox_b_first_is_honoured(tenant_a):
    # given: payments up to 100,000 go to sandbox-b first
    desk = open_desk(tenant_a)
    route_a, route_b = route(desk.tenant, "sandbox-a"), route(desk.tenant, "sandbox-b")
    routing = rule(desk.tenant, "routing", routes=[route_b.id, route_a.id], amount_max=100_000)
    # when
    small = confirmed(desk, 10_000)
    large = confirmed(desk, 150_000)
    # then: the rule's order for the small one, default priority for the large one
    assert [(a["route"], a["outcome"]) for a in small["provider_attempts"]] == [(route_b.id, "accepted")]
    assert small["route"] == route_b.id
    assert PaymentIntent.objects.get(pk=small["id"]).route_plan == [route_b.id, route_a.id]
    assert ("routing", routing.id, "route") in decisions(small["id"])
    assert [(a["route"], a["outcome"]) for a in large["provider_attempts"]] == [(route_a.id, "accepted")]
    assert ("routing", routing.id, "route") not in decisions(large["id"])


def test_velocity_counts_what_is_confirmed_today_whatever_day_the_intent_was_created(tenant_a):
    """Daily velocity limits the money an account moves in a day. Intents created on an earlier
    day and confirmed today move money today: they must count, or pre-created intents bypass
    the limit entirely."""
    # given: at most 3,000 a day; two intents of 2,000 created yesterday, one confirmed today
    from datetime import timedelta

    desk = open_desk(tenant_a)
    rule(desk.tenant, "velocity_account", max_per_day=3_000)
    older = [create_intent(desk, 2_000)["id"] for _ in range(2)]
    PaymentIntent.objects.filter(pk__in=older).update(created_at=timezone.now() - timedelta(days=1))
    assert confirm(desk, older[0]).json()["status"] == "processing"
    before = world(desk.tenant), intent_state(older[1])
    # when: the second one is confirmed today as well (4,000 today in all)
    response = confirm(desk, older[1])
    # then
    problem(response, 422, "policy_denied")
    assert (world(desk.tenant), intent_state(older[1])) == before
    assert desk.balances()["reserve"] == 2_000
