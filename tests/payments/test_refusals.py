"""What payment intents and payouts refuse, with the right problem and nothing written."""

from __future__ import annotations

import pytest

from ledger.models import Hold
from payments.models import PaymentIntent, Payout, PolicyRule
from payments.services.sandbox import sandbox_payouts_due
from tests.ledger.checks import assert_ledger_consistent
from webhooks.models import Event

from .test_support import (
    FUNDS,
    confirm,
    confirmed,
    create_intent,
    deliver_signed,
    denials,
    event_body,
    intent_state,
    new_account,
    open_desk,
    problem,
    provider,
    set_provider,
    world,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(tenant_a):
    return open_desk(tenant_a)


def intent_body(desk, **overrides) -> dict:
    return {"amount": 125_000, "currency": "USD", "source_account": desk.customer,
            "destination_account": desk.merchant, **overrides}


# --- state transitions ------------------------------------------------------------------------------


def test_cancel_while_processing_is_409_and_writes_nothing(desk):
    # given
    intent = confirmed(desk, 125_000)
    before = world(desk.tenant), intent_state(intent["id"]), desk.balances()
    # when
    response = desk.ctx.post(f"/v1/payment_intents/{intent['id']}/cancel", {"reason": "changed my mind"})
    # then
    problem(response, 409, "invalid_state_transition")
    assert (world(desk.tenant), intent_state(intent["id"]), desk.balances()) == before
    assert before[1]["status"] == "processing" and before[1]["hold_state"][0] == "active"


def test_cancel_before_confirmation_and_in_review_then_nothing_more(desk):
    # given: one intent not yet confirmed, one in review (its hold placed)
    fresh = create_intent(desk, 10_000)
    PolicyRule.objects.create(tenant=desk.tenant, kind="risk_new_account",
                              params={"amount_above": 100_000, "younger_than_days": 7})
    reviewed = confirmed(desk, 125_000, expect="requires_review")
    assert desk.balances()["reserve"] == 125_000
    # when
    canceled = [desk.ctx.post(f"/v1/payment_intents/{i['id']}/cancel", {"reason": "buyer left"})
                for i in (fresh, reviewed)]
    # then: canceled, the review's hold released
    for response in canceled:
        assert response.status_code == 200 and response.json()["status"] == "canceled", response.content
        assert response.json()["transitions"][-1]["reason"] == "buyer left"
    assert Hold.objects.get(pk=reviewed["hold"]).status == "released"
    assert desk.balances() == {"customer": FUNDS, "reserve": 0, "settlement": 0, "merchant": 0, "payout": 0}
    assert Event.objects.filter(type="payment_intent.canceled").count() == 2
    # when: canceled again, or confirmed after the cancel
    before = world(desk.tenant)
    problem(desk.ctx.post(f"/v1/payment_intents/{fresh['id']}/cancel"), 409, "invalid_state_transition")
    problem(confirm(desk, fresh["id"]), 409, "invalid_state_transition")
    assert world(desk.tenant) == before


def test_confirm_twice_second_is_409_and_writes_nothing(desk):
    # given
    intent = confirmed(desk, 125_000)
    before = world(desk.tenant), intent_state(intent["id"]), desk.balances()
    # when
    again = confirm(desk, intent["id"])
    # then
    problem(again, 409, "invalid_state_transition")
    assert (world(desk.tenant), intent_state(intent["id"]), desk.balances()) == before
    assert Hold.objects.filter(account_id=desk.customer).count() == 1


@pytest.mark.parametrize("path", ["requires_confirmation", "requires_review"])
def test_settling_a_canceled_intent_with_a_signed_event_is_409_and_writes_nothing(desk, path):
    # given: a canceled intent (canceled before confirmation, or out of review with its hold released)
    if path == "requires_review":
        PolicyRule.objects.create(tenant=desk.tenant, kind="risk_new_account",
                                  params={"amount_above": 100_000, "younger_than_days": 7})
        intent = confirmed(desk, 125_000, expect="requires_review")
    else:
        intent = create_intent(desk, 125_000)
    assert desk.ctx.post(f"/v1/payment_intents/{intent['id']}/cancel").status_code == 200
    before = world(desk.tenant), intent_state(intent["id"]), desk.balances()
    # when: a correctly signed settlement arrives from the first route's provider
    response = deliver_signed(provider(desk.tenant, "sandbox-a"),
                              event_body(intent["id"], reference="sbx_whatever"))
    # then
    problem(response, 409, "invalid_state_transition")
    assert (world(desk.tenant), intent_state(intent["id"]), desk.balances()) == before
    assert PaymentIntent.objects.get(pk=intent["id"]).status == "canceled"
    assert desk.balances()["merchant"] == 0


def test_confirm_without_the_funds_is_422_and_writes_nothing(desk):
    # given: the customer holds 200,000
    intent = create_intent(desk, FUNDS + 1)
    before = world(desk.tenant), intent_state(intent["id"])
    # when
    response = confirm(desk, intent["id"])
    # then: refused; the intent may be confirmed later, once funded
    problem(response, 422, "insufficient_funds")
    assert (world(desk.tenant), intent_state(intent["id"])) == before
    assert PaymentIntent.objects.get(pk=intent["id"]).status == "requires_confirmation"


# --- creation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["source", "destination", "intent"])
def test_currency_mismatch_is_422(desk, which):
    # given: a EUR account beside the USD ones
    eur = new_account(desk.ctx, currency="EUR", account_type="merchant" if which == "destination" else "customer")
    overrides = {"source": {"source_account": eur}, "destination": {"destination_account": eur},
                 "intent": {"currency": "EUR"}}[which]
    before = world(desk.tenant)
    # when
    response = desk.ctx.post("/v1/payment_intents", intent_body(desk, **overrides))
    # then
    problem(response, 422, "currency_mismatch")
    assert world(desk.tenant) == before


@pytest.mark.parametrize("field", ["source_account", "destination_account"])
def test_another_tenants_account_is_404_with_an_access_denial(desk, tenant_b, field):
    # given
    foreign = new_account(tenant_b)
    before = world(desk.tenant), world(tenant_b.tenant)
    # when
    response = desk.ctx.post("/v1/payment_intents", intent_body(desk, **{field: foreign}))
    # then
    problem(response, 404, "not_found")
    assert (world(desk.tenant), world(tenant_b.tenant)) == before
    evidence = denials(target=foreign)
    assert len(evidence) == 1
    assert (evidence[0].tenant_id, evidence[0].target_tenant_id) == (desk.tenant.id, tenant_b.tenant.id)


def test_another_tenants_intent_is_404_with_an_access_denial_and_untouched(desk, tenant_b):
    # given
    intent = create_intent(desk, 10_000)
    before = world(desk.tenant), intent_state(intent["id"])
    # when
    responses = [tenant_b.get(f"/v1/payment_intents/{intent['id']}"),
                 tenant_b.post(f"/v1/payment_intents/{intent['id']}/confirm"),
                 tenant_b.post(f"/v1/payment_intents/{intent['id']}/cancel")]
    # then
    for response in responses:
        problem(response, 404, "not_found")
    assert (world(desk.tenant), intent_state(intent["id"])) == before
    assert len(denials(target=intent["id"], target_tenant_id=desk.tenant.id)) == 3


def test_same_source_and_destination_is_400(desk):
    before = world(desk.tenant)
    problem(desk.ctx.post("/v1/payment_intents", intent_body(desk, destination_account=desk.customer)), 400,
            "validation_error")
    assert world(desk.tenant) == before


def test_system_account_as_source_or_destination_is_403_system_account(desk):
    # A payment naming the reserve or the settlement account would move its money by hand.
    before = world(desk.tenant)
    for overrides in ({"source_account": desk.reserve}, {"destination_account": desk.settlement}):
        problem(desk.ctx.post("/v1/payment_intents", intent_body(desk, **overrides)), 403, "system_account")
    assert world(desk.tenant) == before


@pytest.mark.parametrize("amount", [0, -1, 1.5, "10", True, None, 2**63])
def test_bad_amount_is_400_and_creates_nothing(desk, amount):
    before = world(desk.tenant)
    response = desk.ctx.post("/v1/payment_intents", intent_body(desk, amount=amount))
    body = problem(response, 400, "validation_error")
    assert any(error.get("field") == "amount" for error in body.get("errors", [])), body
    assert world(desk.tenant) == before


# --- payouts ---------------------------------------------------------------------------------------------


@pytest.fixture
def paid_merchant(desk):
    """The merchant holds 125,000 after a settled payment."""
    from payments.services.sandbox import sandbox_settle_due

    confirmed(desk, 125_000)
    assert sandbox_settle_due() == 1
    assert desk.balances()["merchant"] == 125_000
    return desk


def test_payout_of_more_than_the_merchant_has_is_422_and_writes_nothing(paid_merchant):
    desk = paid_merchant
    before = world(desk.tenant)
    response = desk.ctx.post("/v1/payouts", {"account": desk.merchant, "amount": 125_001})
    problem(response, 422, "insufficient_funds")
    assert world(desk.tenant) == before
    assert Payout.objects.count() == 0


def test_payout_from_another_tenants_account_is_404_with_an_access_denial(paid_merchant, tenant_b):
    desk = paid_merchant
    before = world(desk.tenant)
    response = tenant_b.post("/v1/payouts", {"account": desk.merchant, "amount": 1_000})
    problem(response, 404, "not_found")
    assert world(desk.tenant) == before and Payout.objects.count() == 0
    evidence = denials(target=desk.merchant)
    assert len(evidence) == 1 and evidence[0].tenant_id == tenant_b.tenant.id


@pytest.mark.parametrize("body", [{"amount": 0}, {"amount": -5}, {"amount": "10"}, {"amount": 1.0}])
def test_payout_bad_input_is_400(paid_merchant, body):
    desk = paid_merchant
    body = {"account": desk.merchant, **body}
    before = world(desk.tenant)
    problem(desk.ctx.post("/v1/payouts", body), 400, "validation_error")
    assert world(desk.tenant) == before


def test_payout_from_a_system_account_is_403_system_account_with_an_access_denial(paid_merchant):
    desk = paid_merchant
    before = world(desk.tenant)
    problem(desk.ctx.post("/v1/payouts", {"account": desk.settlement, "amount": 10}), 403, "system_account")
    assert world(desk.tenant) == before and Payout.objects.count() == 0
    assert [denial.action for denial in denials(target=desk.settlement)] == ["pay out"]


def test_failed_sandbox_payout_returns_the_funds_to_the_merchant(paid_merchant):
    # given: the payout provider declines
    desk = paid_merchant
    set_provider(desk.tenant, "sandbox-a", mode="decline")
    created = desk.ctx.post("/v1/payouts", {"account": desk.merchant, "amount": 100_000})
    assert created.status_code == 201, created.content
    payout_id = created.json()["id"]
    assert (desk.balances()["merchant"], desk.balances()["payout"]) == (25_000, 100_000)
    # when
    assert sandbox_payouts_due() == 1
    # then
    payout = desk.ctx.get(f"/v1/payouts/{payout_id}").json()
    assert payout["status"] == "failed" and payout["failure_reason"], payout
    assert len(payout["transactions"]) == 2
    assert (desk.balances()["merchant"], desk.balances()["payout"]) == (125_000, 0)
    assert list(Event.objects.filter(resource_id=payout_id).order_by("created_at", "id").values_list(
        "type", flat=True)) == ["payout.created", "payout.failed"]
    # and a failed payout stays failed
    assert sandbox_payouts_due() == 0
    assert_ledger_consistent(desk.tenant)
