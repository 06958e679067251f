"""Breaks found by verification, and their resolution by an owner.

A break on an account puts it under review: debits are refused (409 account_under_review)
until every open break of the account is resolved, by an owner, with a reason. Every step is
in the break's history. The reconciliation workflow (assignment, comments, adjusting postings)
builds on this.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from zentra.errors import InvalidStateTransition, ValidationFailed

from ..models import Account, ReconciliationBreak


def break_resolve(*, break_id: int, actor: Actor, reason: str) -> ReconciliationBreak:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A resolution needs a reason", errors=[{"field": "reason", "message": "Required."}])
    with transaction.atomic(), acting_as(actor):
        found = ReconciliationBreak.objects.select_for_update().get(pk=break_id)
        if found.resolved_at is not None:
            raise InvalidStateTransition(f"Break {found.pk} was already resolved by {found.resolved_by}")
        found.resolved_at = timezone.now()
        found.resolved_by = str(actor)
        found.resolution = reason[:2000]
        found._change_reason = "resolved"  # type: ignore[attr-defined]
        found.save(update_fields=["resolved_at", "resolved_by", "resolution"])
        if found.account_id and not ReconciliationBreak.objects.filter(
                account_id=found.account_id, resolved_at__isnull=True).exists():
            Account.objects.filter(pk=found.account_id).update(under_review=False)
        return found
