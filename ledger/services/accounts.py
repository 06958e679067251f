"""Account lifecycle: create, freeze, unfreeze, close. Each emits its event in its transaction."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from audit.actors import Actor, acting_as
from webhooks.services import event_emit
from zentra.errors import ValidationFailed

from .. import currencies
from ..errors import AccountNotEmpty, InvalidStateTransition
from ..locks import lock_accounts
from ..models import SYSTEM_ACCOUNT_TYPES, Account
from ..selectors import hold_totals


def _account_event(account: Account, type: str, actor: Actor) -> None:
    from ..api.serializers import AccountOutput

    event_emit(tenant=account.tenant, type=type, resource_id=account.id,
               data_object=AccountOutput(account).data, actor=actor)


def account_create(*, tenant, currency: str, account_type: str, actor: Actor, customer: str = "", name: str = "",
                   normal_balance: str = "credit", allow_overdraft: bool = False, overdraft_limit: int | None = None,
                   metadata: dict | None = None, is_system: bool = False) -> Account:
    if not currencies.is_supported(currency):
        raise ValidationFailed(f"Unsupported currency {currency!r}",
                               errors=[{"field": "currency", "message": "Not a supported ISO 4217 code."}])
    if not is_system:
        # Holds, settlements and payouts in this currency need the system accounts.
        account_system_ensure(tenant=tenant, currency=currency, actor=actor)
    with transaction.atomic(), acting_as(actor):
        account = Account(tenant=tenant, currency=currency, account_type=account_type, customer=customer, name=name,
                          normal_balance=normal_balance, allow_overdraft=allow_overdraft,
                          overdraft_limit=overdraft_limit, metadata=metadata or {}, is_system=is_system)
        account.full_clean()
        account.save()
        _account_event(account, "account.created", actor)
        return account


# System accounts: where reserved funds wait, where providers settle, where payouts leave.
# All are credit-normal (the platform owes what they hold onward); reserve never goes below
# zero, settlement and payout are clearing accounts that may while money is in flight.
_SYSTEM_ACCOUNT_SHAPES = {
    "reserve": {"normal_balance": "credit", "allow_overdraft": False},
    "settlement": {"normal_balance": "credit", "allow_overdraft": True},
    "payout": {"normal_balance": "credit", "allow_overdraft": True},
}


def account_system_ensure(*, tenant, currency: str, actor: Actor) -> dict[str, Account]:
    """The tenant's reserve, settlement and payout accounts for `currency`, created if missing.
    Safe when two requests open the first accounts of a currency at once: the loser of the
    unique constraint reads the winner's row."""
    result = {}
    with transaction.atomic(), acting_as(actor):
        for account_type in SYSTEM_ACCOUNT_TYPES:
            lookup = {"tenant": tenant, "currency": currency, "account_type": account_type, "is_system": True}
            account = Account.objects.filter(**lookup).first()
            if account is None:
                try:
                    account = account_create(tenant=tenant, currency=currency, account_type=account_type,
                                             actor=actor, name=f"{account_type.capitalize()} {currency}",
                                             is_system=True, **_SYSTEM_ACCOUNT_SHAPES[account_type])
                except IntegrityError:
                    account = Account.objects.get(**lookup)
            result[account_type] = account
    return result


_TRANSITIONS = {
    "freeze": ({Account.ACTIVE}, Account.FROZEN, "account.frozen"),
    "unfreeze": ({Account.FROZEN}, Account.ACTIVE, "account.unfrozen"),
    "close": ({Account.ACTIVE, Account.FROZEN}, Account.CLOSED, "account.closed"),
}


def _account_transition(*, account: Account, action: str, actor: Actor, reason: str = "") -> Account:
    allowed_from, target, event_type = _TRANSITIONS[action]
    with transaction.atomic(), acting_as(actor):
        (locked,) = lock_accounts([account.pk])
        if locked.status not in allowed_from:
            raise InvalidStateTransition(f"Cannot {action} account {locked.id}: it is {locked.status}")
        if action == "close":
            held, lapsed = hold_totals(locked)
            if locked.posted_balance != 0 or held or lapsed:
                raise AccountNotEmpty(f"Account {locked.id} cannot close: posted balance {locked.posted_balance}, "
                                      f"held {held}, expired holds awaiting release {lapsed}")
        locked.status = target
        locked._change_reason = reason or action
        locked.save(update_fields=["status"])
        _account_event(locked, event_type, actor)
        return locked


def account_freeze(*, account: Account, actor: Actor, reason: str = "") -> Account:
    return _account_transition(account=account, action="freeze", actor=actor, reason=reason)


def account_unfreeze(*, account: Account, actor: Actor, reason: str = "") -> Account:
    return _account_transition(account=account, action="unfreeze", actor=actor, reason=reason)


def account_close(*, account: Account, actor: Actor, reason: str = "") -> Account:
    return _account_transition(account=account, action="close", actor=actor, reason=reason)
