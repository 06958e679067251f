"""Which actions of a tenant wait for a second person (../shared/API.md, Approvals).

By default, for operators in the admin: adjusting postings, reversals above a threshold, period
closes, policy rule changes and approving a review above a threshold. API keys act directly
unless the tenant asks for approvals for them too, except for adjusting postings, which always
need two actors. Platform jobs (system actors) and approved actions themselves never wait.
"""

from __future__ import annotations

from django.conf import settings

from audit.actors import Actor

from .models import Tenant

ADJUSTING_POSTING = "adjusting_posting"
REVERSAL = "transaction_reversal"
PERIOD_CLOSE = "period_close"
POLICY_RULE = "policy_rule_change"
REVIEW_APPROVAL = "review_approval"


def approval_required(tenant: Tenant, action: str, actor: Actor, *, amount: int | None = None) -> bool:
    if actor.kind in ("system", "approval"):
        return False
    if action == ADJUSTING_POSTING:
        return True
    if actor.kind == "api_key" and not tenant.approvals_for_api_keys:
        return False
    if action == REVERSAL:
        threshold = tenant.approval_reversal_above
        return (amount or 0) > (settings.ZENTRA_APPROVAL_REVERSAL_ABOVE if threshold is None else threshold)
    if action == REVIEW_APPROVAL:
        threshold = tenant.approval_review_above
        return (amount or 0) > (settings.ZENTRA_APPROVAL_REVIEW_ABOVE if threshold is None else threshold)
    if action == PERIOD_CLOSE:
        return tenant.approval_period_close
    if action == POLICY_RULE:
        return tenant.approval_policy_rules
    raise ValueError(f"unknown approval action {action!r}")
