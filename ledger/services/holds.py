"""Holds: reserve funds, then capture, release or expire them. Each step is one durable
database transaction and its own ledger transaction.

Lock order, everywhere (ledger/locks.py): the hold row(s) first, then the accounts, each by
primary key. Capture, release and expiry of one hold therefore queue on the hold row: exactly
one resolution wins, the others find it no longer active (409). Each row is loaded and locked
once per call: the accounts a step posts to are locked together, and the postings reuse them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from audit.history import create_with_history, save_many_with_history, save_with_history
from tenants.models import Tenant
from tenants.selectors import Scope, tenant_object
from webhooks.services.outbox import EventInput, event_emit, events_emit
from zentra.db.before_commit import before_commit
from zentra.errors import ValidationFailed

from ..errors import AmountExceedsHold, CurrencyMismatch, HoldNotActive
from ..locks import (
    lock_account_with_system,
    lock_accounts,
    lock_due_holds,
    lock_holds,
    lock_tenant_accounts,
    lock_tenant_hold_with_accounts,
    locked_row,
    shard_pick,
)
from ..models import CREDIT, DEBIT, Account, Hold, LedgerTransaction, new_hold_id, new_transaction_id
from ..selectors import reserve_account_of
from ..shapes import hold_body, hold_transaction_refs
from .postings import EntryInput, post_entries, posting_prepare, postings_write, with_lapsed_holds_retry
from .system_accounts import system_accounts_refuse


def _hold_event(hold: Hold, type: str, actor: Actor) -> None:
    event_emit(tenant=hold.tenant, type=type, resource_id=hold.id, data_object=dict(hold_body(hold)), actor=actor)


def _reserve_account(tenant: Tenant, currency: str) -> Account:
    reserve = reserve_account_of(tenant, currency)
    if reserve is None:
        raise ValidationFailed(f"Tenant {tenant.slug} has no reserve account in {currency}")
    return reserve


def hold_expiry(*, expires_at: datetime | None = None, expires_in: int | None = None) -> datetime:
    """When a new hold expires: given as an instant or as seconds from now (exactly one), in
    the future and at most ZENTRA_HOLD_MAX_SECONDS away. The API and the admin both place
    holds through this rule, and a refusal names the field the caller used."""
    now = timezone.now()
    maximum = settings.ZENTRA_HOLD_MAX_SECONDS
    if (expires_at is None) == (expires_in is None):
        raise ValidationFailed("Give exactly one of expires_in and expires_at", errors=[
            {"field": "expires_in", "message": "Give exactly one of expires_in and expires_at."}])
    if expires_in is not None:
        if expires_in < 1:
            raise ValidationFailed("expires_in must be at least 1 second",
                                   errors=[{"field": "expires_in", "message": "At least 1 second."}])
        if expires_in > maximum:
            raise ValidationFailed(f"expires_in: at most {maximum} seconds",
                                   errors=[{"field": "expires_in", "message": f"At most {maximum} seconds."}])
        return now + timedelta(seconds=expires_in)
    assert expires_at is not None
    if expires_at <= now:
        raise ValidationFailed("expires_at must be in the future",
                               errors=[{"field": "expires_at", "message": "Must be in the future."}])
    if expires_at > now + timedelta(seconds=maximum):
        raise ValidationFailed(f"expires_at is more than {maximum} seconds from now",
                               errors=[{"field": "expires_at", "message": f"At most {maximum} seconds from now."}])
    return expires_at


def active_hold(hold: Hold) -> Hold:
    """The hold, if it can still be captured or released."""
    if hold.status != Hold.ACTIVE:
        raise HoldNotActive(f"Hold {hold.id} is {hold.status}")
    if hold.expires_at <= timezone.now():
        raise HoldNotActive(f"Hold {hold.id} expired at {hold.expires_at.isoformat()}; its funds return to "
                            f"{hold.account_id}")
    return hold


def _mark_resolved(hold: Hold, *, status: str, actor: Actor, reason: str) -> list[str]:
    hold.status = status
    hold.resolved_by = str(actor)
    hold.resolution_reason = reason[:500]
    hold.resolved_at = timezone.now()
    return ["status", "resolved_by", "resolution_reason", "resolved_at"]


def _resolve(hold: Hold, *, status: str | None, actor: Actor, reason: str, fields: list[str]) -> None:
    if status is not None:
        fields = fields + _mark_resolved(hold, status=status, actor=actor, reason=reason)
    # The hold and its history row in one statement: every capture, release and expiry passes here.
    save_with_history(hold, fields, reason=reason or (status or "capture"))


def _return_to_account(hold: Hold, amount: int, *, kind: str, actor: Actor, description: str,
                       locked: dict[str, Account]) -> LedgerTransaction:
    return post_entries(tenant=hold.tenant, actor=actor, kind=kind, hold=hold, description=description, locked=locked,
                        shard_key=hold.id, entries=[EntryInput(hold.reserve_account_id, DEBIT, amount, row=True),
                                 EntryInput(hold.account_id, CREDIT, amount)])


# --- place -------------------------------------------------------------------------------

def hold_place(*, tenant: Tenant, account_id: str, amount: int, actor: Actor, expires_at: datetime | None = None,
               expires_in: int | None = None, reference: str = "", metadata: dict[str, Any] | None = None) -> Hold:
    """Reserve `amount` of the account until it expires (see hold_expiry): posted from the
    account to the tenant's reserve account. Not enough available: InsufficientFunds, nothing
    written."""
    expires_at = hold_expiry(expires_at=expires_at, expires_in=expires_in)
    return with_lapsed_holds_retry(_hold_place, tenant=tenant, account_id=account_id, amount=amount,
                                   expires_at=expires_at, actor=actor, reference=reference, metadata=metadata)


@transaction.atomic(durable=True)
def _hold_place(*, tenant: Tenant, account_id: str, amount: int, expires_at: datetime, actor: Actor,
                reference: str, metadata: dict[str, Any] | None, lapsed_on: Sequence[str]) -> Hold:
    with acting_as(actor):
        # Named before the locks: the shard of the reserve the hold credits follows from it.
        hold_id = new_hold_id()
        if lapsed_on:
            # The rare retry: lapsed holds (and their accounts) are locked before any account.
            account = tenant_object(Account, account_id, scope=Scope.of_tenant(tenant.id, actor),
                                    action="hold account", label="account", field="account")
            reserve = _reserve_account(tenant, account.currency)
            locked = holds_release_lapsed(tenant=tenant, account_ids=lapsed_on, also_lock=[account.id, reserve.id],
                                          whole=[account.id], pick=shard_pick(hold_id), actor=actor)
        else:
            _, _, locked = lock_account_with_system(tenant_id=tenant.id, account_id=account_id, system_type="reserve",
                                                    pick=shard_pick(hold_id), actor=actor, action="hold account")
        hold = hold_place_locked(tenant=tenant, account=locked_row(locked, account_id), amount=amount,
                                 expires_at=expires_at, actor=actor, reference=reference, metadata=metadata,
                                 locked=locked, lapsed_released=bool(lapsed_on), hold_id=hold_id)
        before_commit(hold)
        return hold


def hold_place_locked(*, tenant: Tenant, account: Account, amount: int, expires_at: datetime, actor: Actor,
                      locked: dict[str, Account], hold_id: str, reference: str = "",
                      metadata: dict[str, Any] | None = None, lapsed_released: bool = False) -> Hold:
    """The hold itself, inside the caller's transaction. The caller has locked the account
    (every shard of it) and the shard `hold_id` picks of the tenant's reserve account for its
    currency (payment intents place theirs here)."""
    system_accounts_refuse([account], actor=actor, action="hold account")  # holds reserve customer funds
    if account.normal_balance != CREDIT:
        raise ValidationFailed(f"Account {account.id} is debit-normal; holds reserve credit balances",
                               errors=[{"field": "account", "message": "Holds need a credit-normal account."}])
    pick = shard_pick(hold_id)
    reserves = sorted((a for a in locked.values() if a.account_type == "reserve" and a.is_system
                       and a.currency == account.currency), key=lambda a: a.shard != pick % a.shard_count)
    if not reserves:
        raise ValidationFailed(f"Tenant {tenant.slug} has no reserve account in {account.currency} locked for the hold")
    reserve = reserves[0]
    hold = Hold(id=hold_id, tenant=tenant, account=account, reserve_account=reserve, amount=amount,
                currency=account.currency, expires_at=expires_at, reference=reference, metadata=metadata or {},
                source_request_id=current_request_id() or "", created_by=str(actor), created_at=timezone.now())
    create_with_history(hold, reason="placed")  # the hold and its history row in one statement
    hold.transaction_refs = []  # type: ignore[attr-defined]
    post_entries(tenant=tenant, actor=actor, kind="hold", hold=hold, description=f"Hold {hold.id}", locked=locked,
                 shard_key=hold.id,
                 entries=[EntryInput(account.id, DEBIT, amount), EntryInput(reserve.id, CREDIT, amount, row=True)],
                 lapsed_holds_released=lapsed_released)
    _hold_event(hold, "hold.created", actor)
    return hold


# --- capture -----------------------------------------------------------------------------

@transaction.atomic(durable=True)
def hold_capture(*, tenant: Tenant, hold_id: str, destination_account_id: str, actor: Actor,
                 amount: int | None = None, final: bool = True, reason: str = "") -> Hold:
    """Move `amount` (default: all that remains) from the reserve to the destination. With
    `final`, whatever remains afterwards goes back to the source account."""
    with acting_as(actor):
        hold, locked = lock_tenant_hold_with_accounts(tenant_id=tenant.id, hold_id=hold_id, actor=actor,
                                                      action="capture hold",
                                                      also=[(destination_account_id, "destination_account")])
        active_hold(hold).tenant = tenant
        hold = hold_capture_locked(hold=hold, destination=locked_row(locked, destination_account_id), amount=amount,
                                   final=final, reason=reason, actor=actor, locked=locked)
        before_commit(hold)
        return hold


def hold_capture_locked(*, hold: Hold, destination: Account, actor: Actor, amount: int | None = None,
                        final: bool = True, reason: str = "", payment_intent_id: str | None = None,
                        locked: dict[str, Account] | None = None) -> Hold:
    """The capture itself, on a hold the caller has locked and found active."""
    remaining = hold.remaining
    amount = remaining if amount is None else amount
    if amount > remaining:
        raise AmountExceedsHold(f"Hold {hold.id} has {remaining} remaining, {amount} requested",
                                errors=[{"field": "amount", "message": f"At most {remaining}."}])
    if destination.id == hold.reserve_account_id or destination.account_type == "reserve":
        # The reserve backs every active hold; capturing into it would hand out others' funds.
        raise ValidationFailed("A hold cannot be captured into a reserve account",
                               errors=[{"field": "destination_account", "message": "Not a reserve account."}])
    if destination.currency != hold.currency:
        raise CurrencyMismatch(f"Hold {hold.id} is in {hold.currency}, account {destination.id} in "
                               f"{destination.currency}", errors=[{"field": "destination_account",
                                                                   "message": "Differs from the hold's currency."}])
    locked = lock_tenant_accounts(tenant_id=hold.tenant_id, actor=actor, action="capture hold", already=locked,
                                  exact=[hold.reserve_account_id],
                                  wanted=[(hold.reserve_account_id, "hold"), (destination.id, "destination_account"),
                                          (hold.account_id, "hold")])
    post_entries(tenant=hold.tenant, actor=actor, kind="capture", hold=hold, payment_intent_id=payment_intent_id,
                 description=f"Capture of hold {hold.id}", locked=locked, shard_key=hold.id,
                 entries=[EntryInput(hold.reserve_account_id, DEBIT, amount, row=True),
                          EntryInput(destination.id, CREDIT, amount, row=True)])
    hold.captured_amount += amount
    fields = ["captured_amount"]
    leftover = hold.remaining
    if final and leftover:
        _return_to_account(hold, leftover, kind="release", actor=actor, locked=locked,
                           description=f"Remainder of hold {hold.id} after final capture")
        hold.released_amount += leftover
        fields.append("released_amount")
    _resolve(hold, status=Hold.CAPTURED if hold.remaining == 0 else None, actor=actor,
             reason=reason or "captured", fields=fields)
    _hold_event(hold, "hold.captured", actor)
    return hold


# --- release -----------------------------------------------------------------------------

@transaction.atomic(durable=True)
def hold_release(*, tenant: Tenant, hold_id: str, actor: Actor, reason: str = "") -> Hold:
    """Give what remains of the hold back to its account."""
    with acting_as(actor):
        hold, locked = lock_tenant_hold_with_accounts(tenant_id=tenant.id, hold_id=hold_id, actor=actor,
                                                      action="release hold")
        active_hold(hold).tenant = tenant
        hold = hold_release_locked(hold=hold, actor=actor, reason=reason, locked=locked)
        before_commit(hold)
        return hold


def hold_release_locked(*, hold: Hold, actor: Actor, reason: str = "",
                        locked: dict[str, Account] | None = None) -> Hold:
    locked = lock_tenant_accounts(tenant_id=hold.tenant_id, actor=actor, action="release hold", already=locked,
                                  exact=[hold.reserve_account_id],
                                  wanted=[(hold.reserve_account_id, "hold"), (hold.account_id, "hold")])
    leftover = hold.remaining
    _return_to_account(hold, leftover, kind="release", actor=actor, description=f"Release of hold {hold.id}",
                       locked=locked)
    hold.released_amount += leftover
    _resolve(hold, status=Hold.RELEASED, actor=actor, reason=reason or "released", fields=["released_amount"])
    _hold_event(hold, "hold.released", actor)
    return hold


# --- expiry ------------------------------------------------------------------------------

class _AccountsChanged(Exception):
    """An account of the batch was frozen or closed between the query and its lock."""


def _expiry_recorded(holds: Sequence[Hold], actor: Actor) -> list[tuple[Hold, int, str]]:
    """The holds' side of their expiry: each marked expired with its history row, and its
    `hold.expired` event, each set in one statement. Needs only the hold rows' locks, so the
    batch job writes it before it locks the accounts: the shared reserve row is then held for
    the postings alone. Returns each hold with the amount going back and its transaction id."""
    expiring = [(hold, hold.remaining, new_transaction_id()) for hold in holds]
    fields: list[str] = []
    for hold, leftover, transaction_id in expiring:
        hold.released_amount += leftover
        fields = ["released_amount", *_mark_resolved(hold, status=Hold.EXPIRED, actor=actor, reason="expired")]
        hold.transaction_refs = [*hold_transaction_refs(hold), f"expiry:{transaction_id}"]  # type: ignore[attr-defined]
    save_many_with_history(holds, fields, reason="expired")
    by_tenant: dict[str, list[Hold]] = {}
    for hold in holds:
        by_tenant.setdefault(hold.tenant_id, []).append(hold)
    now = timezone.now()
    for tenant_holds in by_tenant.values():
        events_emit(tenant=tenant_holds[0].tenant, actor=actor, events=[
            EventInput("hold.expired", hold.id, dict(hold_body(hold, now=now))) for hold in tenant_holds])
    return expiring


def _expiry_posted(expiring: Sequence[tuple[Hold, int, str]], actor: Actor, locked: dict[str, Account]) -> None:
    """The ledger's side: each hold's own expiry transaction, all in one statement."""
    postings_write([posting_prepare(
        tenant=hold.tenant, actor=actor, kind="expiry", hold=hold, transaction_id=transaction_id,
        description=f"Expiry of hold {hold.id}", locked=locked,
        entries=[EntryInput(hold.reserve_account_id, DEBIT, leftover, row=True),
                 EntryInput(hold.account_id, CREDIT, leftover)])
        for hold, leftover, transaction_id in expiring], locked)


def _expire_locked(holds: Sequence[Hold], actor: Actor, locked: dict[str, Account]) -> None:
    """Expire the locked, active, due holds, their accounts locked too: each keeps its own
    expiry ledger transaction, history row and event, but each kind of row travels in one
    statement, so a batch of five hundred costs a handful of round trips."""
    if holds:
        _expiry_posted(_expiry_recorded(holds, actor), actor, locked)


@transaction.atomic(durable=True)
def hold_expire(*, hold_id: str, actor: Actor) -> Hold | None:
    """Expire one hold if it is still active and due. Returns None when there was nothing to
    do: another worker holds it (SKIP LOCKED), it was resolved meanwhile, or its account is
    frozen or closed (it takes no entries until an operator acts)."""
    with acting_as(actor):
        holds = lock_holds([hold_id], skip_locked=True)
        if not holds:
            return None
        hold = holds[0]
        if hold.status != Hold.ACTIVE or hold.expires_at > timezone.now():
            return None
        locked = lock_accounts([hold.account_id], exact=[hold.reserve_account_id])
        if locked[hold.account_id].status != Account.ACTIVE:
            return None
        _expire_locked([hold], actor, locked)
        return hold


def holds_expire_due(*, actor: Actor, batch: int = 500) -> int:
    """The expiry job: expire every active hold past its expiry, each with its own expiry
    ledger transaction and event. Idempotent, and safe when runs overlap: holds are claimed
    with SKIP LOCKED, so two runs share the work instead of waiting on each other."""
    expired = 0
    while True:
        try:
            done = _expire_batch(actor=actor, batch=batch)
        except _AccountsChanged:
            continue  # rolled back whole; the next query leaves that account's holds out
        if not done:
            return expired
        expired += done


@transaction.atomic(durable=True)
def _expire_batch(*, actor: Actor, batch: int) -> int:
    # A batch per database transaction: one commit for many expiries, while each expiry
    # stays its own ledger transaction. Holds first (skipping those another run holds; those
    # whose account is frozen or closed wait, as the account takes no entries until an
    # operator acts), then the holds' own rows and events, then all their accounts in one
    # pk-ordered pass and the postings: every batch of a tenant and currency meets at one
    # reserve row, so the work under that lock is kept to the postings.
    with acting_as(actor):
        holds = lock_due_holds(now=timezone.now(), batch=batch)
        if not holds:
            return 0
        expiring = _expiry_recorded(holds, actor)
        locked = lock_accounts([h.account_id for h in holds], exact=[h.reserve_account_id for h in holds])
        if any(locked[hold.account_id].status != Account.ACTIVE for hold in holds):
            raise _AccountsChanged  # frozen since the query: undo the batch, its holds wait
        _expiry_posted(expiring, actor, locked)
        return len(holds)


def holds_release_lapsed(*, tenant: Tenant, account_ids: Iterable[str], also_lock: Iterable[str],
                         actor: Actor, whole: Collection[str] = (), pick: int = 0,
                         exact: Collection[str] = ()) -> dict[str, Account]:
    """Inside a posting's transaction: expire the lapsed holds of `account_ids` first, so
    funds that no longer count as held can be spent. Locks the holds, then every account
    involved (the posting's too, within the tenant; every shard of the one it debits) in one
    ordered pass, and returns their rows."""
    now = timezone.now()
    due_ids = list(Hold.objects.filter(tenant=tenant, account_id__in=list(account_ids), status=Hold.ACTIVE,
                                       expires_at__lte=now).values_list("id", flat=True))
    holds = [h for h in lock_holds(due_ids) if h.status == Hold.ACTIVE and h.expires_at <= now]
    wanted = [*also_lock, *(h.account_id for h in holds), *(h.reserve_account_id for h in holds)]
    locked = lock_tenant_accounts(tenant_id=tenant.id, actor=actor, action="release lapsed holds", pick=pick,
                                  whole=whole, exact={*exact, *(h.reserve_account_id for h in holds)},
                                  wanted=[(account_id, "account") for account_id in dict.fromkeys(wanted)])
    _expire_locked(holds, actor, locked)
    return locked
