"""Transfers and their reversals: the postings an API client or an operator asks for directly.
Each public call is one durable database transaction that posts and writes its event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction

from audit.actors import Actor, acting_as
from tenants.models import Tenant
from webhooks.services.outbox import event_emit
from zentra.db.before_commit import before_commit

from ..errors import AlreadyReversed, InvalidStateTransition
from ..locks import lock_transaction
from ..models import CREDIT, DEBIT, Account, LedgerTransaction, logical_account_of
from ..shapes import transaction_body
from .holds import holds_release_lapsed
from .postings import EntryInput, post_entries, with_lapsed_holds_retry

REVERSIBLE_KINDS = {"transfer"}


def _transaction_event(txn: LedgerTransaction, type: str, actor: Actor) -> None:
    event_emit(tenant=txn.tenant, type=type, resource_id=txn.id, actor=actor,
               data_object=dict(transaction_body(txn, entries=txn.posted_entries, fresh=True)))  # type: ignore[attr-defined]


def _lapsed_released(tenant: Tenant, lapsed_on: Sequence[str], entries: Sequence[EntryInput],
                     actor: Actor) -> dict[str, Account] | None:
    """On the retry of a posting that was short only because of lapsed holds: release them,
    and lock the posting's accounts with theirs (holds first, then accounts, in key order)."""
    if not lapsed_on:
        return None
    return holds_release_lapsed(tenant=tenant, account_ids=lapsed_on, also_lock=[e.account_id for e in entries],
                                whole=[e.account_id for e in entries if e.direction == DEBIT and not e.row],
                                exact=[e.account_id for e in entries if e.row],
                                actor=actor)


def ledger_transaction_post(*, tenant: Tenant, entries: Sequence[EntryInput], actor: Actor, description: str = "",
                            metadata: dict[str, Any] | None = None,
                            effective_at: datetime | None = None) -> LedgerTransaction:
    """Post a balanced transfer. Emits transaction.posted."""
    return with_lapsed_holds_retry(_transfer_post, tenant=tenant, entries=entries, actor=actor,
                                   description=description, metadata=metadata, effective_at=effective_at)


@transaction.atomic(durable=True)
def _transfer_post(*, tenant: Tenant, entries: Sequence[EntryInput], actor: Actor, description: str,
                   metadata: dict[str, Any] | None, effective_at: datetime | None,
                   lapsed_on: Sequence[str]) -> LedgerTransaction:
    with acting_as(actor):
        locked = _lapsed_released(tenant, lapsed_on, entries, actor)
        txn = post_entries(tenant=tenant, entries=entries, actor=actor, kind="transfer", description=description,
                           metadata=metadata, effective_at=effective_at, locked=locked,
                           lapsed_holds_released=bool(lapsed_on))
        _transaction_event(txn, "transaction.posted", actor)
        before_commit(txn)
        return txn


def ledger_transaction_reverse(*, tenant: Tenant, transaction_id: str, actor: Actor,
                               reason: str = "") -> LedgerTransaction:
    """Post the mirror image of a transfer, referencing it. Emits transaction.reversed."""
    return with_lapsed_holds_retry(_transaction_reverse, tenant=tenant, transaction_id=transaction_id, actor=actor,
                                   reason=reason)


@transaction.atomic(durable=True)
def _transaction_reverse(*, tenant: Tenant, transaction_id: str, actor: Actor, reason: str,
                         lapsed_on: Sequence[str]) -> LedgerTransaction:
    with acting_as(actor):
        original = lock_transaction(tenant_id=tenant.id, transaction_id=transaction_id, actor=actor)
        if original.kind == "reversal":
            raise InvalidStateTransition(f"{original.id} is itself a reversal; post a new transaction instead")
        if LedgerTransaction.objects.filter(reverses=original).exists():
            raise AlreadyReversed(f"Transaction {original.id} is already reversed")
        if original.kind not in REVERSIBLE_KINDS:
            raise InvalidStateTransition(
                f"{original.id} is a {original.kind} posting; resolve it through its own workflow, not a reversal")
        # Credits go back to the very rows the original debited; debits take from the account as
        # a whole (a hot account's shard may have spent what the original credited to it).
        mirrored = [EntryInput(account_id=e.account_id, direction=CREDIT, amount=e.amount, row=True)
                    if e.direction == DEBIT else
                    EntryInput(account_id=logical_account_of(e.account_id)[0], direction=DEBIT, amount=e.amount)
                    for e in original.entries.order_by("id")]
        locked = _lapsed_released(tenant, lapsed_on, mirrored, actor)
        reversal = post_entries(tenant=tenant, entries=mirrored, actor=actor, kind="reversal",
                                description=reason or f"Reversal of {original.id}",
                                metadata={"reason": reason} if reason else {}, reverses=original, locked=locked,
                                lapsed_holds_released=bool(lapsed_on))
        _transaction_event(reversal, "transaction.reversed", actor)
        return reversal
