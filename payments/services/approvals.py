"""The payments actions that may wait for a second person (tenants/approval_rules.py): approving
a payment in review above the tenant's threshold, and changing a policy rule. As in
ledger/services/approvals.py, each `*_or_propose` function runs the action directly or stores
the proposal; an approved proposal runs the same service as the approval, which names both."""

from __future__ import annotations

from typing import Any

from audit.actors import Actor
from audit.approvals import approval_action_register
from audit.models import Approval
from audit.services.approvals import approval_propose
from ledger.currencies import format_minor
from tenants.approval_rules import POLICY_RULE, REVIEW_APPROVAL, approval_required
from tenants.models import Tenant
from zentra.errors import InvalidStateTransition, NotFound, ValidationFailed

from ..models import PaymentIntent, PolicyRule
from .configuration import policy_rule_check, policy_rule_create, policy_rule_update
from .intents import payment_intent_approve


def review_approve_or_propose(*, tenant: Tenant, intent_id: str, actor: Actor,
                              reason: str) -> PaymentIntent | Approval:
    intent = PaymentIntent.objects.filter(tenant=tenant, pk=intent_id).first()
    if intent is not None and approval_required(tenant, REVIEW_APPROVAL, actor, amount=intent.amount):
        if not reason.strip():
            raise ValidationFailed("A review decision needs a reason",
                                   errors=[{"field": "reason", "message": "Required."}])
        if intent.status != PaymentIntent.REQUIRES_REVIEW:
            raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status}, not in review")
        return approval_propose(tenant_id=tenant.id, action=REVIEW_APPROVAL, target=intent.id, actor=actor,
                                payload={"payment_intent": intent.id, "reason": reason},
                                summary=f"Approve {intent.id} ({format_minor(intent.amount, intent.currency)}) "
                                        f"in review: {reason}")
    return payment_intent_approve(tenant=tenant, intent_id=intent_id, actor=actor, reason=reason)


def _review_apply(approval: Approval, actor: Actor) -> str:
    tenant = Tenant.objects.get(pk=approval.tenant_id)
    intent_id = approval.payload["payment_intent"]
    intent = PaymentIntent.objects.get(tenant=tenant, pk=intent_id)
    if intent.status != PaymentIntent.REQUIRES_REVIEW and intent.transitions.filter(actor=str(actor)).exists():
        return intent.id  # an earlier decider's run committed (audit/approvals.py)
    return payment_intent_approve(tenant=tenant, intent_id=intent_id, actor=actor,
                                  reason=approval.payload["reason"]).id


def policy_rule_change_or_propose(*, tenant: Tenant, actor: Actor, reason: str, rule_id: str | None = None,
                                  values: dict[str, Any]) -> PolicyRule | Approval:
    """Create a rule (no `rule_id`) or change some of its fields."""
    if not approval_required(tenant, POLICY_RULE, actor):
        if rule_id is None:
            return policy_rule_create(tenant=tenant, actor=actor, reason=reason, **values)
        return policy_rule_update(tenant=tenant, rule_id=rule_id, actor=actor, reason=reason, **values)
    # Checked now as it would be on approval: no proposal for a rule that could never be saved.
    current = None
    if rule_id is not None:
        current = PolicyRule.objects.filter(tenant=tenant, pk=rule_id).first()
        if current is None:
            raise NotFound(f"No such policy rule: {rule_id}")
    merged = {"kind": current.kind, "params": current.params, "currency": current.currency,
              "rail": current.rail} if current else {}
    merged.update({name: values[name] for name in ("kind", "params", "currency", "rail") if name in values})
    policy_rule_check(tenant=tenant, kind=merged.get("kind", ""), params=merged.get("params"),
                      currency=merged.get("currency", ""), rail=merged.get("rail", ""))
    what = f"Change {rule_id}" if rule_id else f"Add a {values.get('kind', '')} rule"
    changed = ", ".join(f"{name}={value}" for name, value in values.items())
    return approval_propose(tenant_id=tenant.id, action=POLICY_RULE, target=rule_id or "", actor=actor,
                            payload={"rule": rule_id, "values": values, "reason": reason},
                            summary=f"{what}: {changed} ({reason})")


def _policy_rule_apply(approval: Approval, actor: Actor) -> str:
    tenant = Tenant.objects.get(pk=approval.tenant_id)
    payload = approval.payload
    if payload["rule"] is None:
        done = PolicyRule.history.filter(tenant_id=tenant.id, history_type="+", history_actor=str(actor)).first()
        if done is not None:
            return str(done.id)
        return policy_rule_create(tenant=tenant, actor=actor, reason=payload["reason"], **payload["values"]).id
    return policy_rule_update(tenant=tenant, rule_id=payload["rule"], actor=actor, reason=payload["reason"],
                              **payload["values"]).id


approval_action_register(REVIEW_APPROVAL, label="Approve a payment in review", run=_review_apply)
approval_action_register(POLICY_RULE, label="Policy rule change", run=_policy_rule_apply)
