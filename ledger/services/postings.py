"""Postings: the only way money moves. One durable transaction per public call.

Every posting locks the accounts it touches in primary-key order (ledger/locks.py), checks
them, appends balanced entries with their sequence, running balance and chain hash, moves
the stored balances, and writes its event, all in one database transaction.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from audit.services import access_denial_record
from webhooks.services import event_emit
from zentra.api.fields import MAX_AMOUNT
from zentra.errors import NotFound, ValidationFailed

from ..chain import entry_hash
from ..errors import (AccountNotActive, AlreadyReversed, CurrencyMismatch, InsufficientFunds, InvalidStateTransition,
                      PolicyDenied, UnbalancedTransaction)
from ..locks import lock_accounts, lock_transaction
from ..models import CREDIT, DEBIT, Account, LedgerEntry, LedgerTransaction

REVERSIBLE_KINDS = {"transfer"}


@dataclass(frozen=True)
class EntryInput:
    account_id: str
    direction: str
    amount: int
    currency: str | None = None  # when given, must equal the account's


def _signed(account: Account, direction: str, amount: int) -> int:
    return amount if direction == account.normal_balance else -amount


def _floor(account: Account) -> int | None:
    """The lowest balance the account may reach; None when it may go anywhere."""
    if not account.allow_overdraft:
        return 0
    return None if account.overdraft_limit is None else -account.overdraft_limit


def _validate_shape(entries: list[EntryInput]) -> None:
    if len(entries) < 2:
        raise ValidationFailed("A transaction needs at least two entries",
                               errors=[{"field": "entries", "message": "At least two entries."}])
    for index, entry in enumerate(entries):
        if entry.direction not in (DEBIT, CREDIT):
            raise ValidationFailed(f"entries[{index}].direction must be debit or credit")
        if isinstance(entry.amount, bool) or not isinstance(entry.amount, int) or not 0 < entry.amount <= MAX_AMOUNT:
            raise ValidationFailed(f"entries[{index}].amount must be a positive integer in minor units")


def _check_accounts(*, tenant, entries: list[EntryInput], accounts: dict[str, Account], actor: Actor) -> None:
    for index, entry in enumerate(entries):
        account = accounts.get(entry.account_id)
        if account is None or account.tenant_id != tenant.id:
            if account is not None:
                access_denial_record(actor=actor, tenant_id=tenant.id, action="post entry", target=entry.account_id,
                                     target_tenant_id=account.tenant_id, reason="account belongs to another tenant",
                                     request_id=current_request_id())
            raise NotFound(f"No such account: {entry.account_id}",
                           errors=[{"field": f"entries[{index}].account", "message": "No such account."}])
        if account.status != Account.ACTIVE:
            raise AccountNotActive(f"Account {account.id} is {account.status}; it takes no new postings")
        if entry.currency is not None and entry.currency != account.currency:
            raise CurrencyMismatch(f"Entry {index} is in {entry.currency} but account {account.id} is in "
                                   f"{account.currency}",
                                   errors=[{"field": f"entries[{index}].currency", "message": "Differs from the account's currency."}])
    net_by_currency: dict[str, int] = defaultdict(int)
    for entry in entries:
        currency = accounts[entry.account_id].currency
        net_by_currency[currency] += entry.amount if entry.direction == DEBIT else -entry.amount
    unbalanced = {c: n for c, n in net_by_currency.items() if n != 0}
    if unbalanced:
        detail = ", ".join(f"{c}: debits exceed credits by {n}" if n > 0 else f"{c}: credits exceed debits by {-n}"
                           for c, n in sorted(unbalanced.items()))
        raise UnbalancedTransaction(f"Debits must equal credits per currency ({detail})")


class LapsedHoldsFirst(Exception):
    """Funds are short, but expired holds not yet released would cover them: the caller
    retries in a new transaction that releases those holds first (ledger.services.holds)."""

    def __init__(self, account_ids: list[str]):
        self.account_ids = account_ids
        super().__init__(", ".join(account_ids))


def _check_debit_limits(locked: dict[str, Account], deltas: dict[str, int]) -> None:
    """The limits stored on accounts, checked by every posting whoever makes it. The account
    rows are locked, so parallel postings cannot both squeeze under a daily limit."""
    for account_id, delta in sorted(deltas.items()):
        account = locked[account_id]
        if delta >= 0:
            continue
        if account.max_single_debit is not None and -delta > account.max_single_debit:
            raise PolicyDenied(f"Account {account.id} allows debits of at most {account.max_single_debit}; "
                               f"{-delta} requested")
        if account.max_daily_debit is not None:
            midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
            spent = (LedgerEntry.objects.filter(account=account, created_at__gte=midnight)
                     .exclude(direction=account.normal_balance).aggregate(total=Sum("amount"))["total"] or 0)
            if spent + -delta > account.max_daily_debit:
                raise PolicyDenied(f"Account {account.id} allows {account.max_daily_debit} of debits per day; "
                                   f"{spent} used, {-delta} requested")


def has_lapsed_holds(account_id: str) -> bool:
    from ..models import Hold

    return Hold.objects.filter(account_id=account_id, status=Hold.ACTIVE, expires_at__lte=timezone.now()).exists()


def post_entries(*, tenant, entries: list[EntryInput], actor: Actor, kind: str = "transfer", description: str = "",
                 metadata: dict | None = None, effective_at: datetime | None = None,
                 reverses: LedgerTransaction | None = None, hold=None, payment_intent=None, payout=None,
                 lapsed_holds_released: bool = False) -> LedgerTransaction:
    """The posting itself, inside the caller's transaction (holds and payments post through
    it inside their own units). Callers outside ledger/services use ledger_transaction_post."""
    _validate_shape(entries)
    locked = {account.id: account for account in lock_accounts(e.account_id for e in entries)}
    _check_accounts(tenant=tenant, entries=entries, accounts=locked, actor=actor)

    deltas: dict[str, int] = defaultdict(int)
    for entry in entries:
        deltas[entry.account_id] += _signed(locked[entry.account_id], entry.direction, entry.amount)
    short = [account_id for account_id, delta in sorted(deltas.items())
             if delta < 0 and _floor(locked[account_id]) is not None
             and locked[account_id].posted_balance + delta < _floor(locked[account_id])]
    if short:
        if not lapsed_holds_released and any(has_lapsed_holds(account_id) for account_id in short):
            raise LapsedHoldsFirst(short)
        account = locked[short[0]]
        available = account.posted_balance - _floor(account)
        raise InsufficientFunds(f"Account {account.id} has {available} available, {-deltas[account.id]} requested")
    _check_debit_limits(locked, deltas)
    for account_id, delta in deltas.items():
        if abs(locked[account_id].posted_balance + delta) > MAX_AMOUNT:
            raise ValidationFailed(f"Account {account_id} would leave the range of a 64-bit balance",
                                   errors=[{"field": "entries", "message": "Balance out of range."}])

    # Taken after the locks, so an account's entries are dated in the order they were appended.
    now = timezone.now()
    txn = LedgerTransaction(
        tenant=tenant, kind=kind, description=description, metadata=metadata or {}, reverses=reverses, hold=hold,
        payment_intent=payment_intent, payout=payout, effective_at=effective_at or now, created_at=now, source_request_id=current_request_id() or "",
        actor=str(actor))
    rows = []
    for entry in entries:
        account = locked[entry.account_id]
        account.last_sequence += 1
        account.posted_balance += _signed(account, entry.direction, entry.amount)
        row = LedgerEntry(tenant=tenant, transaction=txn, account=account, direction=entry.direction,
                          amount=entry.amount, currency=account.currency, sequence=account.last_sequence,
                          balance_after=account.posted_balance, created_at=now)
        row.hash = entry_hash(account.hash_head, row)
        account.hash_head = row.hash
        rows.append(row)
    _write_posting(txn, rows, [locked[account_id] for account_id in sorted(deltas)])
    # A fresh posting has no reversal yet and its entries are in hand: the event payload
    # needs no query for either.
    txn.posted_entries = rows
    return txn


_ENTRY_COLUMNS = ("id", "tenant_id", "transaction_id", "account_id", "direction", "amount", "currency", "sequence",
                  "balance_after", "hash", "created_at")


def _write_posting(txn: LedgerTransaction, rows: list[LedgerEntry], accounts: list[Account]) -> None:
    """The transaction row, its entries and the new account heads in one statement.

    Round trips are most of a posting's cost, so the three writes travel together as
    data-modifying CTEs. The database still checks every row: the entry triggers see earlier
    rows of the same statement, foreign keys are checked at its end, and the zero-sum and
    balance triggers at commit."""
    txn_sql = (f"INSERT INTO {LedgerTransaction._meta.db_table} (id, tenant_id, kind, description, metadata, "
               "reverses_id, hold_id, payment_intent_id, payout_id, effective_at, created_at, source_request_id, "
               "actor) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s)")
    txn_params = [txn.id, txn.tenant_id, txn.kind, txn.description, json.dumps(txn.metadata), txn.reverses_id,
                  txn.hold_id, txn.payment_intent_id, txn.payout_id, txn.effective_at, txn.created_at,
                  txn.source_request_id, txn.actor]
    entry_values = ", ".join(["(%s, %s, %s, %s, %s, %s::bigint, %s, %s::bigint, %s::bigint, %s, %s)"] * len(rows))
    entry_params = [getattr(row, column) for row in rows for column in _ENTRY_COLUMNS]
    head_values = ", ".join(["(%s, %s::bigint, %s::bigint, %s)"] * len(accounts))
    head_params = [p for a in accounts for p in (a.id, a.posted_balance, a.last_sequence, a.hash_head)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH new_transaction AS ({txn_sql} RETURNING id), "
            f"new_entries AS (INSERT INTO {LedgerEntry._meta.db_table} ({', '.join(_ENTRY_COLUMNS)}) "
            f"VALUES {entry_values} RETURNING id) "
            f"UPDATE {Account._meta.db_table} AS account SET posted_balance = head.balance, "
            f"last_sequence = head.sequence, hash_head = head.hash "
            f"FROM (VALUES {head_values}) AS head (id, balance, sequence, hash) WHERE account.id = head.id",
            txn_params + entry_params + head_params)
    txn._state.adding = False
    txn._state.db = "default"
    for row in rows:
        row._state.adding = False
        row._state.db = "default"


def _transaction_event(txn: LedgerTransaction, type: str, actor: Actor) -> None:
    from ..representations import transaction_payload

    # The payload the API shows (TransactionOutput delegates to the same function).
    event_emit(tenant=txn.tenant, type=type, resource_id=txn.id, actor=actor,
               data_object=transaction_payload(txn, entries=txn.posted_entries, reversed_by=None))


def with_lapsed_holds_retry(unit, **arguments):
    """Run a durable unit; if its funds were short only because expired holds still wait for
    the expiry job, run it once more, releasing those holds first in the same transaction."""
    try:
        return unit(**arguments, lapsed_on=())
    except LapsedHoldsFirst as lapsed:
        return unit(**arguments, lapsed_on=lapsed.account_ids)


def release_lapsed_holds_first(lapsed_on, *, lock_too, actor: Actor) -> None:
    if lapsed_on:
        from .holds import holds_release_lapsed

        holds_release_lapsed(account_ids=lapsed_on, also_lock=lock_too, actor=actor)


def ledger_transaction_post(*, tenant, entries: list[EntryInput], actor: Actor, description: str = "",
                            metadata: dict | None = None, effective_at: datetime | None = None) -> LedgerTransaction:
    """Post a balanced transfer. Emits transaction.posted."""
    return with_lapsed_holds_retry(_transfer_post, tenant=tenant, entries=entries, actor=actor,
                                   description=description, metadata=metadata, effective_at=effective_at)


@transaction.atomic(durable=True)
def _transfer_post(*, tenant, entries, actor, description, metadata, effective_at, lapsed_on) -> LedgerTransaction:
    with acting_as(actor):
        release_lapsed_holds_first(lapsed_on, lock_too=[e.account_id for e in entries], actor=actor)
        txn = post_entries(tenant=tenant, entries=entries, actor=actor, kind="transfer", description=description,
                           metadata=metadata, effective_at=effective_at, lapsed_holds_released=bool(lapsed_on))
        _transaction_event(txn, "transaction.posted", actor)
        return txn


def ledger_transaction_reverse(*, tenant, transaction_id: str, actor: Actor, reason: str = "") -> LedgerTransaction:
    """Post the mirror image of a transfer, referencing it. Emits transaction.reversed."""
    return with_lapsed_holds_retry(_transaction_reverse, tenant=tenant, transaction_id=transaction_id, actor=actor,
                                   reason=reason)


@transaction.atomic(durable=True)
def _transaction_reverse(*, tenant, transaction_id: str, actor: Actor, reason: str, lapsed_on) -> LedgerTransaction:
    with acting_as(actor):
        original = lock_transaction(transaction_id)
        if original is None or original.tenant_id != tenant.id:
            if original is not None:
                access_denial_record(actor=actor, tenant_id=tenant.id, action="reverse transaction",
                                     target=transaction_id, target_tenant_id=original.tenant_id,
                                     reason="transaction belongs to another tenant", request_id=current_request_id())
            raise NotFound(f"No such transaction: {transaction_id}")
        if original.kind == "reversal":
            raise InvalidStateTransition(f"{original.id} is itself a reversal; post a new transaction instead")
        if LedgerTransaction.objects.filter(reverses=original).exists():
            raise AlreadyReversed(f"Transaction {original.id} is already reversed")
        if original.kind not in REVERSIBLE_KINDS:
            raise InvalidStateTransition(
                f"{original.id} is a {original.kind} posting; resolve it through its own workflow, not a reversal")
        mirrored = [EntryInput(account_id=e.account_id, direction=CREDIT if e.direction == DEBIT else DEBIT,
                               amount=e.amount) for e in original.entries.order_by("id")]
        release_lapsed_holds_first(lapsed_on, lock_too=[e.account_id for e in mirrored], actor=actor)
        reversal = post_entries(tenant=tenant, entries=mirrored, actor=actor, kind="reversal",
                                description=reason or f"Reversal of {original.id}",
                                metadata={"reason": reason} if reason else {}, reverses=original,
                                lapsed_holds_released=bool(lapsed_on))
        _transaction_event(reversal, "transaction.reversed", actor)
        return reversal
