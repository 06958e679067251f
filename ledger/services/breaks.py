"""Breaks worked to the end: assigned, commented, resolved (../shared/API.md, Reconciliation).

One break model serves the ledger's own verification and settlement-report matching. A break on
an account puts the account under review (debits refused, 409 account_under_review) until every
open break of the account is resolved. A break is resolved as

- `false_positive`: nothing is wrong (the note says why);
- `provider_claim`: the provider is wrong and has been asked to correct it (the note names the
  claim);
- `adjusting_posting`: the ledger is put right by a posting, which always needs a second person:
  it is proposed as an approval (audit.services.approvals) and runs, once approved, through
  `_adjustment_apply` here, posting and resolving in one transaction.

Every step is in the break's history; comments are rows of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.approvals import approval_action_register
from audit.models import Approval
from audit.services.approvals import approval_propose
from tenants.approval_rules import ADJUSTING_POSTING
from tenants.models import Tenant
from zentra.errors import InvalidStateTransition, NotFound, ValidationFailed

from ..currencies import format_minor
from ..models import BREAK_RESOLUTIONS, Account, BreakComment, ReconciliationBreak
from .postings import EntryInput, _validate_shape, post_entries

NOTE_MAX = 2000


def _note(note: str | None, field: str = "note") -> str:
    note = (note or "").strip()
    if not note:
        raise ValidationFailed(f"A {field} is required", errors=[{"field": field, "message": "Required."}])
    return note[:NOTE_MAX]


def _locked_break(tenant: Tenant, break_id: str) -> ReconciliationBreak:
    found = ReconciliationBreak.objects.select_for_update().filter(tenant=tenant, pk=break_id).first()
    if found is None:
        raise NotFound(f"No such reconciliation break: {break_id}")
    return found


def _open(found: ReconciliationBreak) -> None:
    if found.status != ReconciliationBreak.OPEN:
        raise InvalidStateTransition(f"Break {found.pk} was already resolved by {found.resolved_by}")


def _resolved(found: ReconciliationBreak, *, actor: Actor, resolution: str, note: str, reason: str) -> None:
    found.status = ReconciliationBreak.RESOLVED
    found.resolution, found.note = resolution, note
    found.resolved_at, found.resolved_by = timezone.now(), str(actor)
    found._change_reason = reason[:100]  # type: ignore[attr-defined]
    found.save(update_fields=["status", "resolution", "note", "resolved_at", "resolved_by",
                              "adjustment_transaction_id"])
    if found.account_id and not ReconciliationBreak.objects.filter(
            account_id=found.account_id, status=ReconciliationBreak.OPEN).exists():
        Account.rows.filter(pk=found.account_id).update(under_review=False)


def break_resolve(*, tenant: Tenant, break_id: str, actor: Actor, resolution: str, note: str) -> ReconciliationBreak:
    """Resolve as a false positive or a provider claim (an adjusting posting is proposed with
    `break_adjustment_propose`)."""
    if resolution not in BREAK_RESOLUTIONS:
        raise ValidationFailed(f"resolution: unknown value {resolution!r}", errors=[
            {"field": "resolution", "message": f"Must be one of {', '.join(BREAK_RESOLUTIONS)}."}])
    if resolution == "adjusting_posting":
        raise ValidationFailed("An adjusting posting is proposed with its entries and approved by a second person",
                               errors=[{"field": "entries", "message": "Required for adjusting_posting."}])
    note = _note(note)
    with transaction.atomic(), acting_as(actor):
        found = _locked_break(tenant, break_id)
        _open(found)
        _resolved(found, actor=actor, resolution=resolution, note=note, reason=f"resolved: {resolution}")
        return found


def break_assign(*, tenant: Tenant, break_id: str, assignee: Actor, actor: Actor) -> ReconciliationBreak:
    with transaction.atomic(), acting_as(actor):
        found = _locked_break(tenant, break_id)
        _open(found)
        found.assigned_to, found.assigned_to_label = str(assignee), assignee.label[:200]
        found._change_reason = f"assigned to {assignee.label}"[:100]  # type: ignore[attr-defined]
        found.save(update_fields=["assigned_to", "assigned_to_label"])
        return found


def break_comment(*, tenant: Tenant, break_id: str, text: str, actor: Actor) -> BreakComment:
    text = _note(text, "text")
    with transaction.atomic(), acting_as(actor):
        found = _locked_break(tenant, break_id)
        return BreakComment.objects.create(tenant=tenant, reconciliation_break=found, author=str(actor),
                                           author_label=actor.label[:200], text=text, created_at=timezone.now())


def _entries_payload(entries: Sequence[EntryInput]) -> list[dict[str, Any]]:
    return [{"account": e.account_id, "direction": e.direction, "amount": e.amount} for e in entries]


def break_adjustment_propose(*, tenant: Tenant, break_id: str, entries: Sequence[EntryInput], note: str,
                             actor: Actor) -> Approval:
    """Propose an adjusting posting that resolves the break; it runs once a second person
    approves it. The entries are checked now (shape, accounts of the tenant) and again when they
    post, against the balances of that moment."""
    note = _note(note)
    _validate_shape(entries)
    wanted = {e.account_id for e in entries}
    known = {account.pk: account for account in Account.objects.filter(tenant=tenant, pk__in=wanted)}
    for index, entry in enumerate(entries):
        if entry.account_id not in known:
            raise NotFound(f"No such account: {entry.account_id}",
                           errors=[{"field": f"entries[{index}].account", "message": "No such account."}])
    with transaction.atomic():
        found = _locked_break(tenant, break_id)
        _open(found)
        # In words for the person who decides: amounts as money, accounts by name and id.
        amounts = ", ".join(
            f"{e.direction} {format_minor(e.amount, known[e.account_id].currency)} "
            f"{known[e.account_id].name + ' ' if known[e.account_id].name else ''}{e.account_id}" for e in entries)
        return approval_propose(tenant_id=tenant.id, action=ADJUSTING_POSTING, target=found.pk, actor=actor,
                                payload={"break": found.pk, "entries": _entries_payload(entries), "note": note},
                                summary=f"Adjusting posting for {found.kind} break {found.pk}: {amounts}")


def _adjustment_apply(approval: Approval, actor: Actor) -> str:
    """The approved adjusting posting: post the entries and resolve the break, in one transaction.
    Idempotent per approval (audit/approvals.py): a break already resolved by it answers the
    posting it made."""
    payload = approval.payload
    tenant = Tenant.objects.get(pk=approval.tenant_id)
    entries = [EntryInput(account_id=e["account"], direction=e["direction"], amount=int(e["amount"]))
               for e in payload["entries"]]
    with transaction.atomic(), acting_as(actor):
        found = _locked_break(tenant, payload["break"])
        if found.status == ReconciliationBreak.RESOLVED and found.adjustment_transaction_id and \
                found.history.filter(history_actor=str(actor)).exists():
            return found.adjustment_transaction_id
        _open(found)
        txn = post_entries(tenant=tenant, entries=entries, actor=actor, kind="adjustment",
                           description=f"Adjusting posting for break {found.pk}",
                           metadata={"break": found.pk, "approval": approval.id,
                                     "proposed_by": approval.proposed_by, "approved_by": approval.decided_by})
        found.adjustment_transaction_id = txn.id
        _resolved(found, actor=actor, resolution="adjusting_posting", note=payload["note"],
                  reason=f"resolved by adjusting posting {txn.id}")
        return txn.id


approval_action_register(ADJUSTING_POSTING, label="Adjusting posting", run=_adjustment_apply)
