"""Maker-checker: an action proposed by one person runs only once a second one approves it.

- `approval_propose` stores the action (its name, its payload, what it will do in words) as a
  pending approval; the request that proposed it answers 202 with the approval.
- `approval_approve` runs the action through its registered runner (audit/approvals.py), which
  calls the service the action would have used directly, as the approval (so every row it writes
  names both people); `approval_reject` records the refusal. The proposer can never decide their
  own (403, with an AccessDenial); a proposal not decided within its time expires.

The action's service is a transaction of its own (several are durable), so approving is three
short steps: take a lease on the approval (no one else decides it meanwhile), run the action,
mark the approval approved with what the action made. A refusal by the action's service (funds
gone, a state moved on) gives the lease back and leaves the approval pending, to be rejected or
approved again later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from audit.services.evidence import access_denial_record
from zentra.errors import NotFound, ValidationFailed, ZentraError

from ..approvals import actor_for_approval, approval_action, approval_actions
from ..errors import ApprovalNotPending, SameActorDecision
from ..models import Approval

DECISION_LEASE = timedelta(seconds=120)


def approval_propose(*, tenant_id: str, action: str, payload: dict[str, Any], actor: Actor, summary: str = "",
                     target: str = "", expires_in: timedelta | None = None) -> Approval:
    if action not in approval_actions():
        raise ValidationFailed(f"No action {action!r} can wait for approval")
    now = timezone.now()
    ttl = expires_in or timedelta(hours=settings.ZENTRA_APPROVAL_TTL_HOURS)
    approval = Approval(tenant_id=tenant_id, action=action, payload=payload, summary=summary[:500], target=target,
                        proposed_by=str(actor), proposed_by_label=actor.label[:200], created_at=now,
                        expires_at=now + ttl, source_request_id=current_request_id() or "")
    try:
        with transaction.atomic(), acting_as(actor):
            approval._change_reason = "proposed"  # type: ignore[attr-defined]
            approval.save()
    except IntegrityError as exc:
        waiting = Approval.objects.filter(tenant_id=tenant_id, action=action, target=target,
                                          status=Approval.PENDING).first()
        if waiting is None:
            raise
        raise ApprovalNotPending(f"{waiting.id} already proposes {action} on {target}; decide it first") from exc
    return approval


def _locked(tenant_id: str, approval_id: str) -> Approval:
    approval = Approval.objects.select_for_update().filter(tenant_id=tenant_id, pk=approval_id).first()
    if approval is None:
        raise NotFound(f"No such approval: {approval_id}")
    return approval


def _refuse_undecidable(approval: Approval, actor: Actor, *, now: datetime) -> str | None:
    """Why `actor` may not decide `approval` now (None: they may). Expiry is written here."""
    if approval.status == Approval.PENDING and approval.expires_at <= now:
        approval.status = Approval.EXPIRED
        approval._change_reason = "expired before a decision"  # type: ignore[attr-defined]
        approval.save(update_fields=["status"])
    if approval.status != Approval.PENDING:
        return f"Approval {approval.id} is {approval.status}"
    if approval.decision_lease_until and approval.decision_lease_until > now:
        return f"Approval {approval.id} is being decided right now"
    return None


def _check_decider(approval: Approval, actor: Actor, verb: str) -> None:
    if str(actor) == approval.proposed_by:
        detail = f"{actor.label} proposed {approval.id} and cannot {verb} it: a second person must"
        access_denial_record(actor=actor, action=f"{verb} approval", target=approval.id, tenant_id=approval.tenant_id,
                             target_tenant_id=approval.tenant_id, reason=detail, request_id=current_request_id() or "")
        raise SameActorDecision(detail)


def _decided_under_lock(tenant_id: str, approval_id: str, actor: Actor, verb: str,
                        decide: Callable[[Approval, datetime], None]) -> Approval:
    """Lock the approval, refuse a decision by its proposer (403) or one it can no longer take
    (409: decided, expired, being decided), else `decide(approval, now)` in that transaction."""
    refusal = None
    with transaction.atomic(), acting_as(actor):
        approval = _locked(tenant_id, approval_id)
        _check_decider(approval, actor, verb)
        now = timezone.now()
        refusal = _refuse_undecidable(approval, actor, now=now)
        if refusal is None:
            decide(approval, now)
    if refusal:  # raised after the commit, so that an expiry written on the way is kept
        raise ApprovalNotPending(refusal)
    return approval


def approval_reject(*, tenant_id: str, approval_id: str, actor: Actor, reason: str = "") -> Approval:
    def reject(approval: Approval, now: datetime) -> None:
        approval.status = Approval.REJECTED
        approval.decided_by, approval.decided_by_label = str(actor), actor.label[:200]
        approval.decided_at, approval.reason = now, (reason or "")[:500]
        approval._change_reason = f"rejected: {reason}"[:100]  # type: ignore[attr-defined]
        approval.save(update_fields=["status", "decided_by", "decided_by_label", "decided_at", "reason"])

    return _decided_under_lock(tenant_id, approval_id, actor, "reject", reject)


def approval_approve(*, tenant_id: str, approval_id: str, actor: Actor, reason: str = "") -> Approval:
    # 1. The lease: this decider, and no one else, runs the action.
    def lease(approval: Approval, now: datetime) -> None:
        approval.decision_lease_until = now + DECISION_LEASE
        approval.save(update_fields=["decision_lease_until"])

    approval = _decided_under_lock(tenant_id, approval_id, actor, "approve", lease)
    # 2. The action, through its own service, as the approval that names both people.
    approval.decided_by, approval.decided_by_label = str(actor), actor.label[:200]
    try:
        result = approval_action(approval.action).run(approval, actor_for_approval(approval))
    except ZentraError:
        Approval.objects.filter(pk=approval.pk).update(decision_lease_until=None)
        raise
    # 3. The decision, with what the action made.
    with transaction.atomic(), acting_as(actor):
        approval = _locked(tenant_id, approval_id)
        approval.status = Approval.APPROVED
        approval.decided_by, approval.decided_by_label = str(actor), actor.label[:200]
        approval.decided_at, approval.reason, approval.result = timezone.now(), (reason or "")[:500], result[:200]
        approval.decision_lease_until = None
        approval._change_reason = f"approved: {result}"[:100]  # type: ignore[attr-defined]
        approval.save(update_fields=["status", "decided_by", "decided_by_label", "decided_at", "reason", "result",
                                     "decision_lease_until"])
    return approval


def approvals_expire(*, actor: Actor) -> int:
    """Pending approvals past their time become expired (one history row each)."""
    expired = 0
    now = timezone.now()
    with transaction.atomic(), acting_as(actor):
        for approval in Approval.objects.select_for_update(skip_locked=True).filter(
                status=Approval.PENDING, expires_at__lte=now):
            approval.status = Approval.EXPIRED
            approval._change_reason = "expired before a decision"  # type: ignore[attr-defined]
            approval.save(update_fields=["status"])
            expired += 1
    return expired
