"""Deciding a review and managing policy rules through the API, with the same services (and
the same refusals) as the back office."""

from __future__ import annotations

import pytest

from audit.models import AccessDenial
from payments.models import PolicyRule

from .test_support import FUNDS, confirmed, intent_state, open_desk, problem

pytestmark = pytest.mark.django_db

REVIEW_LARGE = {"kind": "risk_new_account", "params": {"amount_above": 100_000, "younger_than_days": 7}}


@pytest.fixture
def desk(tenant_a):
    desk = open_desk(tenant_a)
    assert tenant_a.post("/v1/policy_rules", REVIEW_LARGE).status_code == 201
    return desk


def test_approving_a_review_sends_the_payment_on_to_the_routes(desk):
    # given
    intent = confirmed(desk, 125_000, expect="requires_review")
    # when
    approved = desk.ctx.post(f"/v1/payment_intents/{intent['id']}/approve", {"reason": "customer called in"})
    # then
    assert approved.status_code == 200, approved.json()
    body = approved.json()
    assert body["status"] == "processing" and body["provider_attempts"][-1]["outcome"] == "accepted"
    assert body["transitions"][-1]["reason"] == "approved in review: customer called in"
    assert desk.balances()["reserve"] == 125_000


def test_declining_a_review_fails_the_payment_and_gives_the_funds_back(desk):
    intent = confirmed(desk, 125_000, expect="requires_review")
    declined = desk.ctx.post(f"/v1/payment_intents/{intent['id']}/decline", {"reason": "mule pattern"})
    assert declined.status_code == 200
    assert declined.json()["status"] == "failed"
    assert declined.json()["failure_reason"] == "declined in review: mule pattern"
    assert desk.balances()["customer"] == FUNDS and desk.balances()["reserve"] == 0


def test_a_review_decision_needs_a_reason_and_a_payment_in_review(desk):
    in_review = confirmed(desk, 125_000, expect="requires_review")
    processing = confirmed(desk, 5_000)
    before = intent_state(in_review["id"])
    # no reason: 400, nothing changed
    problem(desk.ctx.post(f"/v1/payment_intents/{in_review['id']}/approve", {}), 400, "validation_error")
    assert intent_state(in_review["id"]) == before
    # not in review: 409
    problem(desk.ctx.post(f"/v1/payment_intents/{processing['id']}/decline", {"reason": "late"}), 409,
            "invalid_state_transition")
    assert intent_state(processing["id"])["status"] == "processing"


def test_rules_are_listed_retrieved_and_changed_with_their_reason(tenant_a, desk):
    # given
    [rule] = tenant_a.get("/v1/policy_rules").json()["data"]
    assert tenant_a.get(f"/v1/policy_rules/{rule['id']}").json() == rule
    # when: the threshold is raised
    changed = tenant_a.post(f"/v1/policy_rules/{rule['id']}", {
        "params": {"amount_above": 200_000, "younger_than_days": 7}, "reason": "fewer false positives"})
    # then
    assert changed.status_code == 200, changed.json()
    assert changed.json()["params"]["amount_above"] == 200_000
    stored = PolicyRule.objects.get(pk=rule["id"])
    assert stored.history.first().history_change_reason == "fewer false positives"
    assert confirmed(desk, 125_000)["status"] == "processing"  # under the new threshold


def test_a_change_that_breaks_a_rule_is_refused_whole(tenant_a, desk):
    [rule] = tenant_a.get("/v1/policy_rules").json()["data"]
    # a kind alone, which the rule's params do not fit: the rule's state refuses it (409)
    refused = tenant_a.post(f"/v1/policy_rules/{rule['id']}", {"kind": "amount_limit"})
    body = problem(refused, 409, "policy_rule_conflict")
    assert {e["field"] for e in body["errors"]} == {"params.amount_above", "params.younger_than_days"}
    # a kind with params of another kind: the request itself is wrong (400)
    problem(tenant_a.post(f"/v1/policy_rules/{rule['id']}", {"kind": "amount_limit", "params": {"max_per_day": 5}}),
            400, "validation_error")
    assert PolicyRule.objects.get(pk=rule["id"]).kind == "risk_new_account"


def test_a_routing_rule_naming_an_unknown_route_is_404(tenant_a, desk):
    before = PolicyRule.objects.filter(tenant=tenant_a.tenant).count()
    refused = tenant_a.post("/v1/policy_rules", {"kind": "routing", "params": {"routes": ["rte_nope"]}})
    body = problem(refused, 404, "not_found")
    assert body["errors"] == [{"field": "params.routes", "message": "No such route: rte_nope."}]
    assert PolicyRule.objects.filter(tenant=tenant_a.tenant).count() == before


def test_another_tenants_rule_is_404_with_an_access_denial(tenant_a, tenant_b, desk):
    [rule] = tenant_a.get("/v1/policy_rules").json()["data"]
    problem(tenant_b.get(f"/v1/policy_rules/{rule['id']}"), 404, "not_found")
    problem(tenant_b.post(f"/v1/policy_rules/{rule['id']}", {"enabled": False}), 404, "not_found")
    assert PolicyRule.objects.get(pk=rule["id"]).enabled is True
    assert AccessDenial.objects.filter(target=rule["id"], target_tenant_id=tenant_a.tenant.id).count() == 2


def test_intents_and_payouts_are_listed_newest_first_and_filtered(tenant_a, desk):
    # given: one intent in review, two processing, and a payout
    review = confirmed(desk, 125_000, expect="requires_review")
    small = [confirmed(desk, 1_000 + n)["id"] for n in range(2)]
    assert tenant_a.post("/v1/transactions", {"entries": [
        {"account": desk.funding, "direction": "debit", "amount": 5_000},
        {"account": desk.merchant, "direction": "credit", "amount": 5_000}]}).status_code == 201
    payout = tenant_a.post("/v1/payouts", {"account": desk.merchant, "amount": 2_000}).json()
    # when / then
    processing = tenant_a.get("/v1/payment_intents", status="processing", limit=1).json()
    assert [i["id"] for i in processing["data"]] == [small[1]] and processing["has_more"] is True
    rest = tenant_a.get("/v1/payment_intents", status="processing", starting_after=small[1]).json()
    assert [i["id"] for i in rest["data"]] == [small[0]] and rest["has_more"] is False
    assert [i["id"] for i in tenant_a.get("/v1/payment_intents", source_account=desk.customer).json()["data"]] == [
        *reversed(small), review["id"]]
    problem(tenant_a.get("/v1/payment_intents", status="paid"), 400, "validation_error")
    payouts = tenant_a.get("/v1/payouts").json()
    assert [p["id"] for p in payouts["data"]] == [payout["id"]] and payouts["data"][0]["status"] == "pending"
