"""A rule the API enforces is the service's, so the admin gives the same answer to the same
request: each rule below is tried through the API and through the admin side by side, and both
refuse with the same words, on the same field, and write nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.messages import ERROR
from django.urls import reverse
from django.utils import timezone

from audit.models import Approval
from ledger.models import Account, Hold
from payments.models import PaymentIntent, PolicyDecision, PolicyRule

pytestmark = pytest.mark.django_db


def field_errors(problem: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in problem.get("errors", []):
        found.setdefault(error["field"], []).append(error["message"])
    return found


def admin_form_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    return {field: list(messages) for field, messages in form.errors.items()}


def error_messages(response) -> list[str]:
    return [m.message for m in response.context["messages"] if m.level == ERROR]


@pytest.fixture
def operator_client(client, tenant_a):
    client.force_login(tenant_a.member("operator"))
    return client


ACCOUNT_FORM = {"customer": "cus_side", "name": "side by side", "currency": "USD", "normal_balance": "credit",
                "metadata": "{}"}


@pytest.mark.parametrize("fields, field", [
    ({"account_type": "reserve"}, "account_type"),
    ({"account_type": "settlement"}, "account_type"),
    ({"account_type": "customer", "overdraft_limit": 500}, "overdraft_limit"),
])
def test_account_rules_refuse_the_same_in_the_api_and_the_admin(tenant_a, operator_client, fields, field):
    accounts_before = Account.objects.filter(tenant=tenant_a.tenant).count()
    # when: the API is asked
    api = tenant_a.post("/v1/accounts", {**{k: v for k, v in ACCOUNT_FORM.items() if k != "metadata"}, **fields})
    # when: the admin is asked the same
    form = {**ACCOUNT_FORM, "tenant": tenant_a.tenant.pk, **fields}
    admin = operator_client.post(reverse("admin:ledger_account_add"), form)
    # then: the same refusal, on the same field, and nothing written
    assert api.status_code == 400 and api.json()["code"] == "validation_error"
    assert field_errors(api.json())[field] == admin_form_errors(admin)[field]
    assert Account.objects.filter(tenant=tenant_a.tenant).count() == accounts_before


def test_the_longest_hold_is_the_same_in_the_api_and_the_admin(tenant_a, operator_client, make_account):
    # given: a funded customer account
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    customer = make_account(customer="cus_hold")
    assert tenant_a.post("/v1/transactions", {"entries": [
        {"account": bank["id"], "direction": "debit", "amount": 5_000},
        {"account": customer["id"], "direction": "credit", "amount": 5_000}]}).status_code == 201
    too_far = timezone.now() + timedelta(seconds=settings.ZENTRA_HOLD_MAX_SECONDS + 3600)
    # when: the API places a hold expiring too far away
    api = tenant_a.post("/v1/holds", {"account": customer["id"], "amount": 1_000,
                                      "expires_at": too_far.isoformat()})
    # when: an operator places the same hold in the admin
    admin = operator_client.post(reverse("admin:ledger_account_changelist"), {
        "action": "place_hold", "_selected_action": [customer["id"]], "confirm": "yes", "amount": 1_000,
        "expires_at": too_far.strftime("%Y-%m-%d %H:%M:%S"), "reference": "", "reason": "court order"},
        follow=True)
    # then: the same refusal, and no hold anywhere
    assert api.status_code == 400
    assert field_errors(api.json())["expires_at"] == [f"At most {settings.ZENTRA_HOLD_MAX_SECONDS} seconds from now."]
    assert any(api.json()["detail"] in message for message in error_messages(admin))
    assert not Hold.objects.filter(account_id=customer["id"]).exists()
    # and a hold within the limit is placed by both
    assert tenant_a.post("/v1/holds", {"account": customer["id"], "amount": 1_000, "expires_in": 3600}
                         ).status_code == 201
    placed = operator_client.post(reverse("admin:ledger_account_changelist"), {
        "action": "place_hold", "_selected_action": [customer["id"]], "confirm": "yes", "amount": 1_000,
        "expires_at": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"), "reference": "ops-1",
        "reason": "court order"}, follow=True)
    assert not error_messages(placed)
    held = Hold.objects.get(account_id=customer["id"], reference="ops-1")
    assert held.metadata == {"reason": "court order"} and held.created_by.startswith("user:")


@pytest.mark.parametrize("params, field, message", [
    ({"max": "500"}, "params.max", "Must be a JSON integer of minor units, at least 1."),
    ({"min": 10, "max": 5}, "params.min", "Must not exceed max."),
    ({"maximum": 5}, "params.maximum", "Not a parameter of amount_limit; it takes max, min."),
])
def test_policy_rule_parameters_refuse_the_same_in_the_api_and_the_admin(tenant_a, operator_client, params,
                                                                         field, message):
    # when
    api = tenant_a.post("/v1/policy_rules", {"kind": "amount_limit", "params": params})
    admin = operator_client.post(reverse("admin:payments_policyrule_add"), {
        "tenant": tenant_a.tenant.pk, "kind": "amount_limit", "position": 100, "enabled": "on", "currency": "",
        "rail": "", "params": json.dumps(params), "description": "", "reason": "tighten limits"})
    # then: the field error of the API is the admin form's, and no rule exists
    assert api.status_code == 400
    assert field_errors(api.json())[field] == [message]
    assert message in admin_form_errors(admin)["params"]
    assert not PolicyRule.objects.filter(tenant=tenant_a.tenant).exists()


def test_a_valid_rule_is_saved_through_the_service_by_both_with_its_reason(tenant_a, operator_client):
    created = tenant_a.post("/v1/policy_rules", {"kind": "velocity_account", "params": {"max_per_day": 10_000},
                                                 "reason": "fraud team request"})
    assert created.status_code == 201, created.json()
    # an operator's rule change waits for a second person (tenants/approval_rules.py)
    proposed = operator_client.post(reverse("admin:payments_policyrule_add"), {
        "tenant": tenant_a.tenant.pk, "kind": "amount_limit", "position": 100, "enabled": "on", "currency": "USD",
        "rail": "", "params": json.dumps({"max": 500_000}), "description": "", "reason": "card scheme cap"})
    approval = Approval.objects.get(action="policy_rule_change", status="pending")
    assert proposed.status_code == 302 and proposed.url == reverse("admin:audit_approval_change", args=[approval.pk])
    assert not PolicyRule.objects.filter(tenant=tenant_a.tenant, kind="amount_limit").exists()
    operator_client.force_login(tenant_a.member("owner"))
    operator_client.post(reverse("admin:audit_approval_changelist"), {
        "action": "approve", "_selected_action": [approval.pk], "confirm": "yes", "reason": "agreed"})
    reasons = {rule.kind: rule.history.first().history_change_reason
               for rule in PolicyRule.objects.filter(tenant=tenant_a.tenant)}
    assert reasons == {"velocity_account": "fraud team request", "amount_limit": "card scheme cap"}
    approval.refresh_from_db()
    assert approval.status == "approved"
    assert PolicyRule.objects.get(pk=approval.result).history.first().history_actor == f"approval:{approval.pk}"


def test_a_rule_broken_behind_the_services_back_denies_the_payment_instead_of_failing(tenant_a, make_account):
    # given: a rule whose parameters were written past the services (raw update)
    rule = PolicyRule.objects.create(tenant=tenant_a.tenant, kind="amount_limit", params={"max": 500_000})
    PolicyRule.objects.filter(pk=rule.pk).update(params={"max": "500"})
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    customer = make_account(customer="cus_rule")
    merchant = make_account(account_type="merchant", customer="mer_rule")
    tenant_a.post("/v1/transactions", {"entries": [
        {"account": bank["id"], "direction": "debit", "amount": 5_000},
        {"account": customer["id"], "direction": "credit", "amount": 5_000}]})
    intent = tenant_a.post("/v1/payment_intents", {"amount": 1_000, "currency": "USD",
                                                   "source_account": customer["id"],
                                                   "destination_account": merchant["id"]}).json()
    # when
    confirmed = tenant_a.post(f"/v1/payment_intents/{intent['id']}/confirm")
    # then: a clear refusal with its evidence, not a 500; nothing reserved
    assert confirmed.status_code == 422 and confirmed.json()["code"] == "policy_denied"
    decision = PolicyDecision.objects.get(intent_id=intent["id"], outcome="deny")
    assert decision.rule_id == rule.pk and "cannot use" in decision.reason
    assert PaymentIntent.objects.get(pk=intent["id"]).status == "requires_confirmation"
    assert not Hold.objects.filter(account_id=customer["id"]).exists()
