"""Postings: the only way money moves.

`post_entries` appends one balanced ledger transaction inside the caller's database
transaction (the public services of transfers, holds and payments each own one durable
transaction and post through it). It locks the accounts it touches in primary-key order
(ledger/locks.py), unless the caller already holds them, checks them, appends the entries with
their sequence, running balance and chain hash, and moves the stored balances, in one
statement. Events are the caller's: it knows which one the change means.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db import IntegrityError, connection
from django.db.models import Sum
from django.utils import timezone

from audit.actors import Actor
from audit.context import current_request_id
from tenants.models import Tenant
from zentra.db.rowsets import rows_param, rows_select
from zentra.errors import ValidationFailed

from ..chain import current_key_id, entry_hash
from ..errors import (
    AccountNotActive,
    AccountUnderReview,
    BalanceOutOfRange,
    CurrencyMismatch,
    InsufficientFunds,
    PolicyDenied,
    UnbalancedTransaction,
)
from ..locks import lock_tenant_accounts, locked_row, shard_pick
from ..models import (
    CREDIT,
    DEBIT,
    MAX_AMOUNT,
    Account,
    Hold,
    LedgerEntry,
    LedgerTransaction,
    new_transaction_id,
)
from ..selectors import account_row_ids
from .periods import PERIOD_OPEN_CONSTRAINT, period_closed_error, period_refuse_closed
from .system_accounts import system_accounts_refuse

T = TypeVar("T")


@dataclass(frozen=True)
class EntryInput:
    account_id: str
    direction: str
    amount: int
    currency: str | None = None  # when given, must equal the account's
    # `account_id` names one physical row of a hot account (the reserve shard a hold credited),
    # not the account as a whole: shard 0's row has the account's own id.
    row: bool = False


def signed(account: Account, direction: str, amount: int) -> int:
    """An entry's effect on the account's balance, which is signed in its normal direction."""
    return amount if direction == account.normal_balance else -amount


def balance_floor(account: Account) -> int | None:
    """The lowest balance the account may reach; None when it may go anywhere."""
    if not account.allow_overdraft:
        return 0
    return None if account.overdraft_limit is None else -account.overdraft_limit


def _validate_shape(entries: Sequence[EntryInput]) -> None:
    if len(entries) < 2:
        raise ValidationFailed("A transaction needs at least two entries",
                               errors=[{"field": "entries", "message": "At least two entries."}])
    for index, entry in enumerate(entries):
        if entry.direction not in (DEBIT, CREDIT):
            raise ValidationFailed(f"entries[{index}].direction must be debit or credit")
        if isinstance(entry.amount, bool) or not isinstance(entry.amount, int) or not 0 < entry.amount <= MAX_AMOUNT:
            raise ValidationFailed(f"entries[{index}].amount must be a positive integer in minor units")


def _check_accounts(entries: Sequence[tuple[int, EntryInput]], accounts: dict[str, Account]) -> None:
    """`entries`: (index in the request, entry on a row) pairs."""
    for index, entry in entries:
        account = accounts[entry.account_id]
        if account.status != Account.ACTIVE:
            raise AccountNotActive(f"Account {account.logical_id} is {account.status}; it takes no new postings")
        if entry.currency is not None and entry.currency != account.currency:
            raise CurrencyMismatch(f"Entry {index} is in {entry.currency} but account {account.logical_id} is in "
                                   f"{account.currency}", errors=[{"field": f"entries[{index}].currency",
                                                                   "message": "Differs from the account's currency."}])
    net_by_currency: dict[str, int] = defaultdict(int)
    for _, entry in entries:
        currency = accounts[entry.account_id].currency
        net_by_currency[currency] += entry.amount if entry.direction == DEBIT else -entry.amount
    unbalanced = {c: n for c, n in net_by_currency.items() if n != 0}
    if unbalanced:
        detail = ", ".join(f"{c}: debits exceed credits by {n}" if n > 0 else f"{c}: credits exceed debits by {-n}"
                           for c, n in sorted(unbalanced.items()))
        raise UnbalancedTransaction(f"Debits must equal credits per currency ({detail})")


# Releases and expiries only give reserved funds back to their owner, and an adjusting posting is
# how two people put a break right: none of them waits for the review it may be part of.
RETURNS_RESERVED_FUNDS = {"release", "expiry", "adjustment"}


def _check_under_review(entries: Sequence[tuple[int, EntryInput]], accounts: dict[str, Account]) -> None:
    for _, entry in entries:
        account = accounts[entry.account_id]
        if entry.direction == DEBIT and account.under_review:
            raise AccountUnderReview(f"Account {account.logical_id} is under review: its latest verification found a "
                                     "break, and no debit is taken until an owner resolves it")


class LapsedHoldsFirst(Exception):
    """Funds are short, but expired holds not yet released would cover them: the caller
    retries in a new transaction that releases those holds first (with_lapsed_holds_retry)."""

    def __init__(self, account_ids: list[str]) -> None:
        self.account_ids = account_ids
        super().__init__(", ".join(account_ids))


def _check_debit_limits(locked: dict[str, Account], deltas: dict[str, int]) -> None:
    """The limits stored on accounts (each shard row carries its account's), checked by every
    posting whoever makes it, on the account as a whole. The rows are locked (every shard of an
    account debited), so parallel postings cannot both squeeze under a daily limit."""
    by_account: dict[str, int] = defaultdict(int)
    for row_id, delta in deltas.items():
        by_account[locked[row_id].logical_id] += delta
    for account_id, delta in sorted(by_account.items()):
        account = locked_row(locked, account_id)
        if delta >= 0:
            continue
        if account.max_single_debit is not None and -delta > account.max_single_debit:
            raise PolicyDenied(f"Account {account_id} allows debits of at most {account.max_single_debit}; "
                               f"{-delta} requested")
        if account.max_daily_debit is not None:
            midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
            spent = (LedgerEntry.objects.filter(account_id__in=account_row_ids(account), created_at__gte=midnight)
                     .exclude(direction=account.normal_balance).aggregate(total=Sum("amount"))["total"] or 0)
            if spent + -delta > account.max_daily_debit:
                raise PolicyDenied(f"Account {account_id} allows {account.max_daily_debit} of debits per day; "
                                   f"{spent} used, {-delta} requested")


def _has_lapsed_holds(account_id: str) -> bool:
    return Hold.objects.filter(account_id=account_id, status=Hold.ACTIVE, expires_at__lte=timezone.now()).exists()


def _short(accounts_short: Sequence[str], available: int, requested: int, lapsed_holds_released: bool) -> Exception:
    """The refusal of a posting its accounts cannot cover (the first named in the message), or,
    when expired holds not yet released would cover it, the signal to release them first."""
    if not lapsed_holds_released and any(_has_lapsed_holds(account_id) for account_id in accounts_short):
        return LapsedHoldsFirst(list(accounts_short))
    return InsufficientFunds(f"Account {accounts_short[0]} has {available} available, {requested} requested")


def _on_rows(entries: Sequence[EntryInput], locked: dict[str, Account], pick: int,
             lapsed_holds_released: bool) -> list[tuple[int, EntryInput]]:
    """The posting's entries on the rows they move, each with its index in the request. An
    account of one row, or a shard named by its id, is its own row; a credit to a sharded
    account goes to the shard its lock chose; a debit of one with a floor takes from its shards
    in order, as much as each holds above its floor, one entry per shard it draws from."""
    rows_of: dict[str, list[Account]] = defaultdict(list)
    for row in locked.values():
        rows_of[row.logical_id].append(row)
    moved: dict[str, int] = defaultdict(int)  # by earlier entries of this posting
    placed: list[tuple[int, EntryInput]] = []
    for index, entry in enumerate(entries):
        start = len(placed)
        own = locked[entry.account_id] if entry.account_id in locked else None
        if own is not None and (entry.row or own.shard_count == 1 or own.shard_of_id is not None):
            placed.append((index, entry))
        else:
            shards = sorted(rows_of[entry.account_id], key=lambda row: row.shard)
            floor = balance_floor(shards[0])
            if entry.direction == DEBIT and floor is not None and shards[0].status == Account.ACTIVE:
                if len(shards) != shards[0].shard_count:
                    raise RuntimeError(f"A debit of {entry.account_id} needs all of its shards locked")
                wanted = entry.amount
                for row in shards:
                    room = row.posted_balance + moved[row.id] - floor
                    take = min(wanted, room)
                    if take > 0:
                        placed.append((index, EntryInput(row.id, DEBIT, take, entry.currency, row=True)))
                        wanted -= take
                if wanted:
                    available = sum(row.posted_balance + moved[row.id] - floor for row in shards)
                    raise _short([entry.account_id], available, entry.amount, lapsed_holds_released)
            else:
                chosen = [row for row in shards if row.shard == pick % row.shard_count] or shards
                placed.append((index, EntryInput(chosen[0].id, entry.direction, entry.amount, entry.currency,
                                                 row=True)))
        for _, part in placed[start:]:
            moved[part.account_id] += signed(locked[part.account_id], part.direction, part.amount)
    return placed


def post_entries(*, tenant: Tenant, entries: Sequence[EntryInput], actor: Actor, kind: str = "transfer",
                 description: str = "", metadata: dict[str, Any] | None = None, effective_at: datetime | None = None,
                 reverses: LedgerTransaction | None = None, hold: Hold | None = None,
                 payment_intent_id: str | None = None, payout_id: str | None = None,
                 locked: dict[str, Account] | None = None, lapsed_holds_released: bool = False,
                 shard_key: str | None = None) -> LedgerTransaction:
    """Append one balanced transaction, inside the caller's database transaction. `locked`:
    rows the caller has already locked (they are not locked again, and their in-memory heads
    must be current). `shard_key`: what picks the shard a credit to a hot account goes to (the
    hold, intent or payout the posting belongs to; the transaction's id when absent). The
    returned transaction carries its entries (`posted_entries`)."""
    _validate_shape(entries)
    if effective_at is not None:
        # Only a posting given its own date can fall in a closed period; the trigger of
        # migration 0013 checks every one, and waits for a close in progress.
        period_refuse_closed(tenant_id=tenant.id, effective_at=effective_at)
    transaction_id = new_transaction_id()
    pick = shard_pick(shard_key or transaction_id)
    locked = lock_tenant_accounts(tenant_id=tenant.id, actor=actor, action="post entry", already=locked, pick=pick,
                                  whole={e.account_id for e in entries if e.direction == DEBIT and not e.row},
                                  exact={e.account_id for e in entries if e.row},
                                  wanted=[(e.account_id, f"entries[{i}].account") for i, e in enumerate(entries)])
    txn = posting_prepare(tenant=tenant, entries=entries, actor=actor, kind=kind, description=description,
                          metadata=metadata, effective_at=effective_at, reverses=reverses, hold=hold,
                          payment_intent_id=payment_intent_id, payout_id=payout_id, locked=locked,
                          lapsed_holds_released=lapsed_holds_released, transaction_id=transaction_id, pick=pick)
    postings_write([txn], locked)
    return txn


def posting_prepare(*, tenant: Tenant, entries: Sequence[EntryInput], actor: Actor, kind: str,
                    locked: dict[str, Account], description: str = "", metadata: dict[str, Any] | None = None,
                    effective_at: datetime | None = None, reverses: LedgerTransaction | None = None,
                    hold: Hold | None = None, payment_intent_id: str | None = None, payout_id: str | None = None,
                    lapsed_holds_released: bool = False, transaction_id: str | None = None,
                    pick: int = 0) -> LedgerTransaction:
    """Check one posting against the locked rows and build its entries, advancing the rows'
    in-memory heads; nothing is written until postings_write. Callers that post many at once
    (the expiry job) prepare each, then write them all in one statement; they may name the
    transaction's id in advance (`transaction_id`), to write what refers to it first. `pick`:
    the shard a credit to a hot account goes to, when its lock took more than one."""
    _validate_shape(entries)
    if kind == "transfer":
        # A transfer is the posting a client or an operator asks for by hand.
        system_accounts_refuse((locked_row(locked, e.account_id) for e in entries), actor=actor, action="post entry")
    placed = _on_rows(entries, locked, pick, lapsed_holds_released)
    _check_accounts(placed, locked)
    if kind not in RETURNS_RESERVED_FUNDS:
        _check_under_review(placed, locked)

    deltas: dict[str, int] = defaultdict(int)
    for _, entry in placed:
        deltas[entry.account_id] += signed(locked[entry.account_id], entry.direction, entry.amount)
    short = [account_id for account_id, delta in sorted(deltas.items())
             if delta < 0 and (floor := balance_floor(locked[account_id])) is not None
             and locked[account_id].posted_balance + delta < floor]
    if short:
        account = locked[short[0]]
        available = account.posted_balance - (balance_floor(account) or 0)
        raise _short([locked[row_id].logical_id for row_id in short], available, -deltas[account.id],
                     lapsed_holds_released)
    _check_debit_limits(locked, deltas)
    for account_id, delta in deltas.items():
        if abs(locked[account_id].posted_balance + delta) > MAX_AMOUNT:
            raise BalanceOutOfRange(f"Account {account_id} would leave the range of a 64-bit balance",
                                    errors=[{"field": "entries", "message": "Balance out of range."}])

    # Taken after the locks, so an account's entries are dated in the order they were appended.
    now = timezone.now()
    txn = LedgerTransaction(
        id=transaction_id or new_transaction_id(), tenant=tenant, kind=kind, description=description,
        metadata=metadata or {}, reverses=reverses, hold=hold,
        payment_intent_id=payment_intent_id, payout_id=payout_id, effective_at=effective_at or now, created_at=now,
        source_request_id=current_request_id() or "", actor=str(actor))
    rows = []
    key_id = current_key_id()
    for _, entry in placed:
        account = locked[entry.account_id]
        account.last_sequence += 1
        account.posted_balance += signed(account, entry.direction, entry.amount)
        # By id, not by object: building model instances is a visible share of a batch's time.
        row = LedgerEntry(tenant_id=tenant.id, transaction_id=txn.id, account_id=account.id,
                          direction=entry.direction, amount=entry.amount, currency=account.currency,
                          sequence=account.last_sequence, balance_after=account.posted_balance, key_id=key_id,
                          created_at=now)
        row.hash = entry_hash(account.hash_head, row)
        account.hash_head = row.hash
        rows.append(row)
    txn.posted_entries = rows  # type: ignore[attr-defined]
    if hold is not None:
        # The hold's public shape lists its transactions; keep the list it was loaded with current.
        refs = getattr(hold, "transaction_refs", None)
        if refs is not None and f"{kind}:{txn.id}" not in refs:
            hold.transaction_refs = [*refs, f"{kind}:{txn.id}"]  # type: ignore[attr-defined]
    return txn


_TRANSACTION_COLUMNS = (("id", "varchar"), ("tenant_id", "varchar"), ("kind", "varchar"),
                        ("description", "varchar"), ("metadata", "jsonb"), ("reverses_id", "varchar"),
                        ("hold_id", "varchar"), ("payment_intent_id", "varchar"), ("payout_id", "varchar"),
                        ("effective_at", "timestamptz"), ("created_at", "timestamptz"),
                        ("source_request_id", "varchar"), ("actor", "varchar"))
_ENTRY_COLUMNS = (("id", "varchar"), ("tenant_id", "varchar"), ("transaction_id", "varchar"),
                  ("account_id", "varchar"), ("direction", "varchar"), ("amount", "bigint"), ("currency", "varchar"),
                  ("sequence", "bigint"), ("balance_after", "bigint"), ("hash", "varchar"), ("key_id", "varchar"),
                  ("created_at", "timestamptz"))
_HEAD_COLUMNS = (("id", "varchar"), ("balance", "bigint"), ("sequence", "bigint"), ("hash", "varchar"))


def postings_write(transactions: Sequence[LedgerTransaction], accounts: dict[str, Account]) -> None:
    """Prepared postings (posting_prepare), their entries and the new heads of the accounts they
    touched, in one statement.

    Round trips are most of a posting's cost, so the writes travel together as data-modifying
    CTEs, each table's rows as one JSON parameter (one statement for one posting or for a
    batch of five hundred). The database still checks every row: the entry triggers see earlier
    rows of the same statement, foreign keys are checked at its end, and the zero-sum and
    balance triggers at commit."""
    rows = [row for txn in transactions for row in txn.posted_entries]  # type: ignore[attr-defined]
    heads = [accounts[account_id] for account_id in sorted({row.account_id for row in rows})]
    with connection.cursor() as cursor, _period_closed_refusal(transactions[0]):
        cursor.execute(
            f"WITH new_transactions AS (INSERT INTO {LedgerTransaction._meta.db_table} "
            f"({_names(_TRANSACTION_COLUMNS)}) {rows_select(_TRANSACTION_COLUMNS)} RETURNING id), "
            f"new_entries AS (INSERT INTO {LedgerEntry._meta.db_table} ({_names(_ENTRY_COLUMNS)}) "
            f"{rows_select(_ENTRY_COLUMNS)} RETURNING id) "
            f"UPDATE {Account._meta.db_table} AS account SET posted_balance = head.balance, "
            f"last_sequence = head.sequence, hash_head = head.hash "
            f"FROM ({rows_select(_HEAD_COLUMNS)}) AS head WHERE account.id = head.id",
            [rows_param(_TRANSACTION_COLUMNS, [[getattr(txn, column) for column, _ in _TRANSACTION_COLUMNS]
                                               for txn in transactions]),
             rows_param(_ENTRY_COLUMNS, [[getattr(row, column) for column, _ in _ENTRY_COLUMNS] for row in rows]),
             rows_param(_HEAD_COLUMNS, [[a.id, a.posted_balance, a.last_sequence, a.hash_head] for a in heads])])
    for txn in transactions:
        txn._state.adding = False
        txn._state.db = "default"
    for row in rows:
        row._state.adding = False
        row._state.db = "default"


def _names(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(name for name, _ in columns)


@contextmanager
def _period_closed_refusal(txn: LedgerTransaction) -> Iterator[None]:
    """A close that committed after the service's own check (periods.period_refuse_closed): the
    database refuses the back-dated row, and the client gets the same 422 period_closed."""
    try:
        yield
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == PERIOD_OPEN_CONSTRAINT:
            raise period_closed_error(txn.effective_at, None) from exc
        raise


def with_lapsed_holds_retry(unit: Callable[..., T], **arguments: Any) -> T:
    """Run a durable unit; if its funds were short only because expired holds still wait for
    the expiry job, run it once more, releasing those holds first in the same transaction
    (the unit receives their accounts as `lapsed_on`)."""
    try:
        return unit(**arguments, lapsed_on=())
    except LapsedHoldsFirst as lapsed:
        return unit(**arguments, lapsed_on=lapsed.account_ids)
