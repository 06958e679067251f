"""The ledger's actions that may wait for a second person (tenants/approval_rules.py): reversals
above the tenant's threshold and period closes. Each `*_or_propose` function is what the API and
the admin call: it runs the action directly, or, when the tenant's rules ask for two people,
checks what can be checked now and stores the proposal (audit.services.approvals). An approved
proposal runs the very same service, as the approval (which names both people). Adjusting
postings, which always wait, are in breaks.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.actors import Actor
from audit.approvals import approval_action_register
from audit.models import Approval
from audit.services.approvals import approval_propose
from tenants.approval_rules import PERIOD_CLOSE, REVERSAL, approval_required
from tenants.models import Tenant
from zentra.errors import InvalidStateTransition, ValidationFailed
from zentra.shapes import iso

from ..currencies import format_minor
from ..errors import AlreadyReversed
from ..models import DEBIT, LedgerPeriod, LedgerTransaction
from .periods import latest_close, ledger_period_close
from .transfers import REVERSIBLE_KINDS, ledger_transaction_reverse


def transaction_reverse_or_propose(*, tenant: Tenant, transaction_id: str, actor: Actor,
                                   reason: str = "") -> LedgerTransaction | Approval:
    original = LedgerTransaction.objects.filter(tenant=tenant, pk=transaction_id).first()
    if original is not None:
        # The size of a posting: its debits, in its largest currency.
        totals: dict[str, int] = {}
        for entry in original.entries.filter(direction=DEBIT):
            totals[entry.currency] = totals.get(entry.currency, 0) + entry.amount
        currency, amount = max(totals.items(), key=lambda item: item[1], default=("", 0))
        if approval_required(tenant, REVERSAL, actor, amount=amount):
            # What would refuse the reversal now refuses the proposal (no approval for nothing).
            if original.kind not in REVERSIBLE_KINDS:
                raise InvalidStateTransition(f"{original.id} is a {original.kind} posting; it is not reversed")
            if LedgerTransaction.objects.filter(reverses=original).exists():
                raise AlreadyReversed(f"Transaction {original.id} is already reversed")
            return approval_propose(tenant_id=tenant.id, action=REVERSAL, target=original.id, actor=actor,
                                    payload={"transaction": original.id, "reason": reason},
                                    summary=f"Reverse {original.id} ({format_minor(amount, currency)}): {reason}")
    # Missing (404 with evidence), small enough, or an actor that acts directly.
    return ledger_transaction_reverse(tenant=tenant, transaction_id=transaction_id, actor=actor, reason=reason)


def _reversal_apply(approval: Approval, actor: Actor) -> str:
    tenant = Tenant.objects.get(pk=approval.tenant_id)
    done = LedgerTransaction.objects.filter(reverses_id=approval.payload["transaction"], actor=str(actor)).first()
    if done is not None:  # an earlier decider's run committed (audit/approvals.py)
        return done.id
    return ledger_transaction_reverse(tenant=tenant, transaction_id=approval.payload["transaction"], actor=actor,
                                      reason=approval.payload.get("reason", "")).id


def period_close_or_propose(*, tenant: Tenant, until: datetime, actor: Actor) -> LedgerPeriod | Approval:
    if not approval_required(tenant, PERIOD_CLOSE, actor):
        return ledger_period_close(tenant=tenant, until=until, actor=actor)
    until = until.astimezone(UTC)
    if until > timezone.now():
        raise ValidationFailed(f"until {iso(until)} is in the future: only the past can be closed",
                               errors=[{"field": "until", "message": "Must not be in the future."}])
    latest = latest_close(tenant.id)
    if latest is not None and until <= latest.closed_until:
        raise InvalidStateTransition(f"The ledger is already closed until {iso(latest.closed_until)} ({latest.id})")
    # One proposed close at a time (the target is the tenant's ledger).
    return approval_propose(tenant_id=tenant.id, action=PERIOD_CLOSE, target=f"ledger:{tenant.id}", actor=actor,
                            payload={"until": iso(until)}, summary=f"Close the ledger until {iso(until)}")


def _period_close_apply(approval: Approval, actor: Actor) -> str:
    tenant = Tenant.objects.get(pk=approval.tenant_id)
    until = parse_datetime(approval.payload["until"])
    assert until is not None
    done = LedgerPeriod.objects.filter(tenant=tenant, closed_until=until, closed_by=str(actor)).first()
    if done is not None:
        return done.id
    return ledger_period_close(tenant=tenant, until=until, actor=actor).id


approval_action_register(REVERSAL, label="Reversal", run=_reversal_apply)
approval_action_register(PERIOD_CLOSE, label="Period close", run=_period_close_apply)
