"""Holds: reserve funds, then capture, release or expire them. Each step is one durable
database transaction and its own ledger transaction.

Lock order, everywhere: the hold row(s) first (by primary key), then the accounts (by primary
key, through ledger/locks.py). Capture, release and expiry of one hold therefore queue on the
hold row: exactly one resolution wins, the others find it no longer active (409).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from audit.services import access_denial_record
from webhooks.services import event_emit
from zentra.errors import NotFound, ValidationFailed

from ..errors import AmountExceedsHold, CurrencyMismatch, HoldNotActive
from ..locks import lock_accounts, lock_holds
from ..models import CREDIT, DEBIT, Account, Hold
from .lookups import tenant_account
from .postings import EntryInput, post_entries, release_lapsed_holds_first, with_lapsed_holds_retry


def _hold_event(hold: Hold, type: str, actor: Actor) -> None:
    from ..representations import hold_payload

    event_emit(tenant=hold.tenant, type=type, resource_id=hold.id, data_object=hold_payload(hold), actor=actor)


def _reserve_account(tenant, currency: str) -> Account:
    reserve = Account.objects.filter(tenant=tenant, currency=currency, account_type="reserve", is_system=True).first()
    if reserve is None:
        raise ValidationFailed(f"Tenant {tenant.slug} has no reserve account in {currency}")
    return reserve


def locked_active_hold(tenant, hold_id: str, actor: Actor, *, action: str) -> Hold:
    holds = lock_holds([hold_id])
    hold = holds[0] if holds else None
    if hold is None or hold.tenant_id != tenant.id:
        if hold is not None:
            access_denial_record(actor=actor, tenant_id=tenant.id, action=f"{action} hold", target=hold_id,
                                 target_tenant_id=hold.tenant_id, reason="hold belongs to another tenant",
                                 request_id=current_request_id())
        raise NotFound(f"No such hold: {hold_id}")
    if hold.status != Hold.ACTIVE:
        raise HoldNotActive(f"Hold {hold.id} is {hold.status}")
    if hold.expires_at <= timezone.now():
        raise HoldNotActive(f"Hold {hold.id} expired at {hold.expires_at.isoformat()}; its funds return to "
                            f"{hold.account_id}")
    return hold


def _resolve(hold: Hold, *, status: str | None, actor: Actor, reason: str, fields: list[str]) -> None:
    if status is not None:
        hold.status = status
        hold.resolved_by = str(actor)
        hold.resolution_reason = reason[:500]
        hold.resolved_at = timezone.now()
        fields = fields + ["status", "resolved_by", "resolution_reason", "resolved_at"]
    hold._change_reason = reason or (status or "capture")
    hold.save(update_fields=fields)


def _return_to_account(hold: Hold, amount: int, *, kind: str, actor: Actor, description: str):
    return post_entries(tenant=hold.tenant, actor=actor, kind=kind, hold=hold, description=description,
                        entries=[EntryInput(hold.reserve_account_id, DEBIT, amount),
                                 EntryInput(hold.account_id, CREDIT, amount)])


# --- place -------------------------------------------------------------------------------

def hold_place(*, tenant, account_id: str, amount: int, expires_at: datetime, actor: Actor, reference: str = "",
               metadata: dict | None = None) -> Hold:
    """Reserve `amount` of the account until `expires_at`: posted from the account to the
    tenant's reserve account. Not enough available: InsufficientFunds, nothing written."""
    if expires_at <= timezone.now():
        raise ValidationFailed("expires_at must be in the future",
                               errors=[{"field": "expires_at", "message": "Must be in the future."}])
    return with_lapsed_holds_retry(_hold_place, tenant=tenant, account_id=account_id, amount=amount,
                                   expires_at=expires_at, actor=actor, reference=reference, metadata=metadata)


@transaction.atomic(durable=True)
def _hold_place(*, tenant, account_id, amount, expires_at, actor, reference, metadata, lapsed_on) -> Hold:
    with acting_as(actor):
        account = tenant_account(tenant, account_id, actor, field="account")
        reserve = _reserve_account(tenant, account.currency)
        release_lapsed_holds_first(lapsed_on, lock_too=[account.id, reserve.id], actor=actor)
        return place_hold_in_transaction(tenant=tenant, account=account, amount=amount, expires_at=expires_at,
                                         actor=actor, reference=reference, metadata=metadata,
                                         lapsed_released=bool(lapsed_on))


def place_hold_in_transaction(*, tenant, account: Account, amount: int, expires_at: datetime, actor: Actor,
                              reference: str = "", metadata: dict | None = None,
                              lapsed_released: bool = False) -> Hold:
    """The hold itself, inside the caller's transaction (payment intents place theirs here)."""
    if account.is_system:
        raise ValidationFailed(f"Account {account.id} is a system account; holds reserve customer funds",
                               errors=[{"field": "account", "message": "Not a system account."}])
    if account.normal_balance != CREDIT:
        raise ValidationFailed(f"Account {account.id} is debit-normal; holds reserve credit balances",
                               errors=[{"field": "account", "message": "Holds need a credit-normal account."}])
    reserve = _reserve_account(tenant, account.currency)
    lock_accounts([account.id, reserve.id])
    hold = Hold(tenant=tenant, account=account, reserve_account=reserve, amount=amount, currency=account.currency,
                expires_at=expires_at, reference=reference, metadata=metadata or {},
                source_request_id=current_request_id() or "", created_by=str(actor), created_at=timezone.now())
    hold._change_reason = "placed"
    hold.save()
    txn = post_entries(tenant=tenant, actor=actor, kind="hold", hold=hold, description=f"Hold {hold.id}",
                       entries=[EntryInput(account.id, DEBIT, amount), EntryInput(reserve.id, CREDIT, amount)],
                       lapsed_holds_released=lapsed_released)
    hold.recent_transactions = [txn]
    _hold_event(hold, "hold.created", actor)
    return hold


# --- capture -----------------------------------------------------------------------------

@transaction.atomic(durable=True)
def hold_capture(*, tenant, hold_id: str, destination_account_id: str, actor: Actor, amount: int | None = None,
                 final: bool = True, reason: str = "") -> Hold:
    """Move `amount` (default: all that remains) from the reserve to the destination. With
    `final`, whatever remains afterwards goes back to the source account."""
    with acting_as(actor):
        hold = locked_active_hold(tenant, hold_id, actor, action="capture")
        destination = tenant_account(tenant, destination_account_id, actor, field="destination_account")
        return capture_hold_in_transaction(hold=hold, destination=destination, amount=amount, final=final,
                                           reason=reason, actor=actor)


def capture_hold_in_transaction(*, hold: Hold, destination: Account, actor: Actor, amount: int | None = None,
                                final: bool = True, reason: str = "", payment_intent=None) -> Hold:
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
                               f"{destination.currency}",
                               errors=[{"field": "destination_account", "message": "Differs from the hold's currency."}])
    lock_accounts([hold.reserve_account_id, destination.id, hold.account_id])
    post_entries(tenant=hold.tenant, actor=actor, kind="capture", hold=hold, payment_intent=payment_intent,
                 description=f"Capture of hold {hold.id}",
                 entries=[EntryInput(hold.reserve_account_id, DEBIT, amount), EntryInput(destination.id, CREDIT, amount)])
    hold.captured_amount += amount
    fields = ["captured_amount"]
    leftover = hold.remaining
    if final and leftover:
        _return_to_account(hold, leftover, kind="release", actor=actor,
                           description=f"Remainder of hold {hold.id} after final capture")
        hold.released_amount += leftover
        fields.append("released_amount")
    _resolve(hold, status=Hold.CAPTURED if hold.remaining == 0 else None, actor=actor,
             reason=reason or "captured", fields=fields)
    _hold_event(hold, "hold.captured", actor)
    return hold


# --- release -----------------------------------------------------------------------------

@transaction.atomic(durable=True)
def hold_release(*, tenant, hold_id: str, actor: Actor, reason: str = "") -> Hold:
    """Give what remains of the hold back to its account."""
    with acting_as(actor):
        hold = locked_active_hold(tenant, hold_id, actor, action="release")
        return release_hold_in_transaction(hold=hold, actor=actor, reason=reason)


def release_hold_in_transaction(*, hold: Hold, actor: Actor, reason: str = "") -> Hold:
    lock_accounts([hold.reserve_account_id, hold.account_id])
    leftover = hold.remaining
    _return_to_account(hold, leftover, kind="release", actor=actor, description=f"Release of hold {hold.id}")
    hold.released_amount += leftover
    _resolve(hold, status=Hold.RELEASED, actor=actor, reason=reason or "released", fields=["released_amount"])
    _hold_event(hold, "hold.released", actor)
    return hold


# --- expiry ------------------------------------------------------------------------------

def _can_take_funds_back(hold: Hold) -> bool:
    return Account.objects.filter(pk=hold.account_id, status=Account.ACTIVE).exists()


def _expire_locked(hold: Hold, actor: Actor) -> Hold:
    leftover = hold.remaining
    _return_to_account(hold, leftover, kind="expiry", actor=actor, description=f"Expiry of hold {hold.id}")
    hold.released_amount += leftover
    _resolve(hold, status=Hold.EXPIRED, actor=actor, reason="expired", fields=["released_amount"])
    _hold_event(hold, "hold.expired", actor)
    return hold


@transaction.atomic(durable=True)
def hold_expire(*, hold_id: str, actor: Actor) -> Hold | None:
    """Expire one hold if it is still active and due. Returns None when there was nothing to
    do: another worker holds it (SKIP LOCKED) or it was resolved meanwhile."""
    with acting_as(actor):
        holds = lock_holds([hold_id], skip_locked=True)
        if not holds:
            return None
        hold = holds[0]
        if hold.status != Hold.ACTIVE or hold.expires_at > timezone.now() or not _can_take_funds_back(hold):
            return None
        lock_accounts([hold.reserve_account_id, hold.account_id])
        return _expire_locked(hold, actor)


def holds_expire_due(*, actor: Actor, batch: int = 100) -> int:
    """The expiry job: expire every active hold past its expiry, each with its own expiry
    ledger transaction and event. Idempotent, and safe when runs overlap: holds are claimed
    with SKIP LOCKED, so two runs share the work instead of waiting on each other."""
    expired = 0
    while True:
        done = _expire_batch(actor=actor, batch=batch)
        if not done:
            return expired
        expired += done


@transaction.atomic(durable=True)
def _expire_batch(*, actor: Actor, batch: int) -> int:
    # A batch per database transaction: one commit for many expiries, while each expiry
    # stays its own ledger transaction. Holds first (skipping those another run holds),
    # then all their accounts in one pk-ordered pass.
    with acting_as(actor):
        # Holds whose account is frozen or closed wait: the account takes no entries until an
        # operator acts, and one such hold must not stall the expiry of every other.
        holds = list(Hold.objects.select_for_update(of=("self",), skip_locked=True).select_related("tenant")
                     .filter(status=Hold.ACTIVE, expires_at__lte=timezone.now(), account__status=Account.ACTIVE)
                     .order_by("expires_at")[:batch])
        if not holds:
            return 0
        locked = lock_accounts([account_id for h in holds for account_id in (h.account_id, h.reserve_account_id)])
        active = {account.id for account in locked if account.status == Account.ACTIVE}
        expired = 0
        for hold in holds:
            if hold.account_id in active:  # frozen since the query: it waits with the others
                _expire_locked(hold, actor)
                expired += 1
        return expired


def holds_release_lapsed(*, account_ids, also_lock, actor: Actor) -> int:
    """Inside a posting's transaction: expire the lapsed holds of `account_ids` first, so
    funds that no longer count as held can be spent. Locks the holds, then every account
    involved (the posting's too) in one ordered pass."""
    now = timezone.now()
    due_ids = list(Hold.objects.filter(account_id__in=account_ids, status=Hold.ACTIVE, expires_at__lte=now)
                   .values_list("id", flat=True))
    holds = [h for h in lock_holds(due_ids) if h.status == Hold.ACTIVE and h.expires_at <= now]
    lock_accounts([*also_lock, *(h.account_id for h in holds), *(h.reserve_account_id for h in holds)])
    for hold in holds:
        _expire_locked(hold, actor)
    return len(holds)
