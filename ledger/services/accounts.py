"""Account lifecycle: create, freeze, unfreeze, close. Each emits its event in its transaction.

The rules of a new account live here, not in a serializer or a form, so the API and the admin
give the same answer: a supported currency, no system account types (the services create
those), and an overdraft limit only where overdraft is allowed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from audit.actors import Actor, acting_as
from tenants.models import Tenant
from webhooks.services.outbox import event_emit
from zentra.errors import ValidationFailed

from .. import currencies
from ..errors import AccountNotEmpty, InvalidStateTransition
from ..locks import lock_tenant_account
from ..models import ACCOUNT_TYPES, CREDIT, DEBIT, SYSTEM_ACCOUNT_TYPES, Account
from ..selectors import hold_totals, posted_balance
from ..shapes import account_body
from .shards import shard_rows_create
from .system_accounts import system_accounts_refuse


def _account_event(account: Account, type: str, actor: Actor) -> None:
    event_emit(tenant=account.tenant, type=type, resource_id=account.id, data_object=dict(account_body(account)),
               actor=actor)


def account_values_check(*, currency: str, account_type: str, normal_balance: str = CREDIT,
                         allow_overdraft: bool = False, overdraft_limit: int | None = None) -> None:
    """Refuse what a client may not open, naming every field at fault."""
    errors: list[dict[str, str]] = []
    if not currencies.is_supported(currency):
        errors.append({"field": "currency", "message": "Not a supported ISO 4217 code."})
    if account_type in SYSTEM_ACCOUNT_TYPES:
        errors.append({"field": "account_type", "message": f"{account_type} is a system account type; the tenant's "
                                                           "system accounts are created by bootstrap_tenant."})
    elif account_type not in ACCOUNT_TYPES:
        errors.append({"field": "account_type", "message": f"Unknown account type {account_type!r}."})
    if normal_balance not in (DEBIT, CREDIT):
        errors.append({"field": "normal_balance", "message": "debit or credit."})
    if overdraft_limit is not None and not allow_overdraft:
        errors.append({"field": "overdraft_limit", "message": "Only accounts with allow_overdraft have a limit."})
    if overdraft_limit is not None and overdraft_limit < 0:
        errors.append({"field": "overdraft_limit", "message": "Must not be negative."})
    if errors:
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


def account_create(*, tenant: Tenant, currency: str, account_type: str, actor: Actor, customer: str = "",
                   name: str = "", normal_balance: str = CREDIT, allow_overdraft: bool = False,
                   overdraft_limit: int | None = None, metadata: dict[str, Any] | None = None) -> Account:
    """Open an account for a client (customer, merchant, operating, external...). Emits
    account.created. The tenant's system accounts for the currency are opened with it."""
    account_values_check(currency=currency, account_type=account_type, normal_balance=normal_balance,
                         allow_overdraft=allow_overdraft, overdraft_limit=overdraft_limit)
    # Holds, settlements and payouts in this currency need the system accounts.
    account_system_ensure(tenant=tenant, currency=currency, actor=actor)
    return _account_open(tenant=tenant, currency=currency, account_type=account_type, actor=actor,
                         customer=customer, name=name, normal_balance=normal_balance,
                         allow_overdraft=allow_overdraft, overdraft_limit=overdraft_limit, metadata=metadata,
                         is_system=False)


def _account_open(*, tenant: Tenant, currency: str, account_type: str, actor: Actor, customer: str, name: str,
                  normal_balance: str, allow_overdraft: bool, overdraft_limit: int | None,
                  metadata: dict[str, Any] | None, is_system: bool, shards: int = 1) -> Account:
    with transaction.atomic(), acting_as(actor):
        account = Account(tenant=tenant, currency=currency, account_type=account_type, customer=customer, name=name,
                          normal_balance=normal_balance, allow_overdraft=allow_overdraft,
                          overdraft_limit=overdraft_limit, metadata=metadata or {}, is_system=is_system,
                          shard_count=shards)
        account.full_clean()
        account._change_reason = "opened"  # type: ignore[attr-defined]
        account.save()
        shard_rows_create(account)  # a hot account's other rows, before anything can post to it
        _account_event(account, "account.created", actor)
        return account


# System accounts: where reserved funds wait, where providers settle, where payouts leave.
# All are credit-normal (the platform owes what they hold onward); reserve never goes below
# zero, settlement and payout are clearing accounts that may while money is in flight.
_SYSTEM_ACCOUNT_SHAPES = {
    "reserve": {"normal_balance": CREDIT, "allow_overdraft": False},
    "settlement": {"normal_balance": CREDIT, "allow_overdraft": True},
    "payout": {"normal_balance": CREDIT, "allow_overdraft": True},
    # What providers kept of the money they settled (posted from settlement, one transaction per report).
    "fees": {"normal_balance": CREDIT, "allow_overdraft": False},
}


def account_system_ensure(*, tenant: Tenant, currency: str, actor: Actor) -> dict[str, Account]:
    """The tenant's reserve, settlement and payout accounts for `currency`, created if missing.
    Safe when two requests open the first accounts of a currency at once: the loser of the
    unique constraint reads the winner's row."""
    if not currencies.is_supported(currency):
        raise ValidationFailed(f"Unsupported currency {currency!r}",
                               errors=[{"field": "currency", "message": "Not a supported ISO 4217 code."}])
    result = {}
    existing = {a.account_type: a for a in Account.objects.filter(tenant=tenant, currency=currency, is_system=True)}
    for account_type in SYSTEM_ACCOUNT_TYPES:
        account = existing.get(account_type)
        if account is None:
            try:
                with transaction.atomic():
                    # Every hold, settlement or payout of the currency meets here: opened spread.
                    account = _account_open(tenant=tenant, currency=currency, account_type=account_type, actor=actor,
                                            customer="", name=f"{account_type.capitalize()} {currency}",
                                            metadata=None, overdraft_limit=None, is_system=True,
                                            shards=settings.ZENTRA_SYSTEM_ACCOUNT_SHARDS,
                                            **_SYSTEM_ACCOUNT_SHAPES[account_type])  # type: ignore[arg-type]
            except IntegrityError:
                account = Account.objects.get(tenant=tenant, currency=currency, account_type=account_type,
                                              is_system=True)
        result[account_type] = account
    return result


_TRANSITIONS = {
    "freeze": ({Account.ACTIVE}, Account.FROZEN, "account.frozen"),
    "unfreeze": ({Account.FROZEN}, Account.ACTIVE, "account.unfrozen"),
    "close": ({Account.ACTIVE, Account.FROZEN}, Account.CLOSED, "account.closed"),
}


def _account_transition(*, tenant: Tenant, account_id: str, action: str, actor: Actor, reason: str) -> Account:
    allowed_from, target, event_type = _TRANSITIONS[action]
    with transaction.atomic(), acting_as(actor):
        account = lock_tenant_account(tenant_id=tenant.id, account_id=account_id, actor=actor,
                                      action=f"{action} account")
        if action in ("freeze", "close"):
            # Unfreeze stays open: it is how an account frozen before this rule is put right.
            system_accounts_refuse([account], actor=actor, action=f"{action} account")
        if account.status not in allowed_from:
            raise InvalidStateTransition(f"Cannot {action} account {account.id}: it is {account.status}")
        if action == "close":
            held, lapsed = hold_totals(account)
            posted = posted_balance(account)
            if posted != 0 or held or lapsed:
                raise AccountNotEmpty(f"Account {account.id} cannot close: posted balance {posted}, "
                                      f"held {held}, expired holds awaiting release {lapsed}")
        account.status = target
        account._change_reason = reason or action  # type: ignore[attr-defined]
        account.save(update_fields=["status"])
        # Its shard rows follow (postings check the status of the rows they move).
        Account.rows.filter(shard_of=account).update(status=target)
        account.tenant = tenant
        _account_event(account, event_type, actor)
        return account


def account_freeze(*, tenant: Tenant, account_id: str, actor: Actor, reason: str = "") -> Account:
    return _account_transition(tenant=tenant, account_id=account_id, action="freeze", actor=actor, reason=reason)


def account_unfreeze(*, tenant: Tenant, account_id: str, actor: Actor, reason: str = "") -> Account:
    return _account_transition(tenant=tenant, account_id=account_id, action="unfreeze", actor=actor, reason=reason)


def account_close(*, tenant: Tenant, account_id: str, actor: Actor, reason: str = "") -> Account:
    return _account_transition(tenant=tenant, account_id=account_id, action="close", actor=actor, reason=reason)
