"""The public shapes of accounts, transactions, statement entries and holds (zentra/shapes.py).

Built by hand rather than through DRF's field machinery: a posting writes its payload into its
event inside the locked section, so building it must cost microseconds, not a query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal, TypedDict

from django.utils import timezone

from zentra.shapes import JSONObject, Timestamp, iso, iso_or_none

from .models import Account, Hold, LedgerEntry, LedgerPeriod, LedgerTransaction, ReconciliationBreak, logical_account_of
from .selectors import Balances, account_balances

Direction = Literal["debit", "credit"]


class BalancesBody(TypedDict):
    """posted: the ledger balance. held: what active, unexpired holds still reserve (already moved
    to the reserve account). available: what a debit or a new hold may use; null when an
    overdraft has no limit."""

    posted: int
    held: int
    available: int | None


class AccountBody(TypedDict):
    id: str
    object: Literal["account"]
    customer: str
    name: str
    currency: str
    account_type: str
    normal_balance: Direction
    status: Literal["active", "frozen", "closed"]
    allow_overdraft: bool
    overdraft_limit: int | None
    is_system: bool
    under_review: bool
    shards: int  # rows the account is spread over (hot accounts); its balances are their sum
    balances: BalancesBody
    metadata: JSONObject
    created_at: Timestamp


class BalanceBody(TypedDict):
    account: str
    currency: str
    posted: int
    held: int
    available: int | None
    as_of: Timestamp


class TransactionEntryBody(TypedDict):
    id: str
    account: str
    shard: int  # of a hot account: the shard whose balance_after and sequence these are (0 otherwise)
    direction: Direction
    amount: int
    currency: str
    balance_after: int
    sequence: int


class TransactionBody(TypedDict):
    id: str
    object: Literal["transaction"]
    status: Literal["posted"]
    kind: str
    description: str
    entries: list[TransactionEntryBody]
    reverses: str | None
    reversed_by: str | None
    metadata: JSONObject
    created_at: Timestamp
    effective_at: Timestamp


class StatementEntryBody(TypedDict):
    id: str
    transaction: str
    direction: Direction
    amount: int
    currency: str
    balance_after: int
    sequence: int
    shard: int
    created_at: Timestamp


class HoldTransactionsBody(TypedDict):
    created: str | None
    captures: list[str]
    release: str | None


class HoldBody(TypedDict):
    id: str
    object: Literal["hold"]
    account: str
    amount: int
    currency: str
    captured_amount: int
    released_amount: int
    status: Literal["active", "captured", "released", "expired"]
    expires_at: Timestamp
    reference: str
    metadata: JSONObject
    source_request_id: str
    transactions: HoldTransactionsBody
    resolved_by: str | None
    resolution_reason: str | None
    created_at: Timestamp
    resolved_at: Timestamp | None


def balances_body(balances: Balances) -> BalancesBody:
    return {"posted": balances.posted, "held": balances.held, "available": balances.available}


def account_body(account: Account) -> AccountBody:
    return {
        "id": account.id, "object": "account", "customer": account.customer, "name": account.name,
        "currency": account.currency, "account_type": account.account_type,
        "normal_balance": account.normal_balance,  # type: ignore[typeddict-item]
        "status": account.status,  # type: ignore[typeddict-item]
        "allow_overdraft": account.allow_overdraft, "overdraft_limit": account.overdraft_limit,
        "is_system": account.is_system, "under_review": account.under_review, "shards": account.shard_count,
        "balances": balances_body(account_balances(account)),
        "metadata": account.metadata, "created_at": iso(account.created_at),
    }


def balance_body(account: Account, balances: Balances, as_of: datetime) -> BalanceBody:
    return {"account": account.id, "currency": account.currency, "posted": balances.posted,
            "held": balances.held, "available": balances.available, "as_of": iso(as_of)}


def transaction_entry_body(entry: LedgerEntry) -> TransactionEntryBody:
    # A hot account's entry names the account, and the shard whose sequence and balance it shows.
    account_id, shard = logical_account_of(entry.account_id)
    return {"id": entry.id, "account": account_id, "shard": shard,
            "direction": entry.direction,  # type: ignore[typeddict-item]
            "amount": entry.amount, "currency": entry.currency, "balance_after": entry.balance_after,
            "sequence": entry.sequence}


def transaction_body(txn: LedgerTransaction, *, entries: Iterable[LedgerEntry] | None = None,
                     reversed_by: str | None = None, fresh: bool = False) -> TransactionBody:
    """`fresh`: just posted, with its `entries` in hand; nothing can have reversed it yet.
    Otherwise the entries and the reversal come from the transaction (prefetched in lists)."""
    if not fresh:
        entries = txn.entries.all()
        try:
            reversed_by = txn.reversed_by.id
        except LedgerTransaction.DoesNotExist:
            reversed_by = None
    return {
        "id": txn.id, "object": "transaction", "status": "posted", "kind": txn.kind, "description": txn.description,
        "entries": [transaction_entry_body(e) for e in sorted(entries or [], key=lambda e: e.id)],
        "reverses": txn.reverses_id, "reversed_by": reversed_by, "metadata": txn.metadata,
        "created_at": iso(txn.created_at), "effective_at": iso(txn.effective_at),
    }


def statement_entry_body(entry: LedgerEntry) -> StatementEntryBody:
    return {"id": entry.id, "transaction": entry.transaction_id,
            "direction": entry.direction,  # type: ignore[typeddict-item]
            "amount": entry.amount, "currency": entry.currency, "balance_after": entry.balance_after,
            "sequence": entry.sequence, "shard": logical_account_of(entry.account_id)[1],
            "created_at": iso(entry.created_at)}


def effective_hold_status(hold: Hold, now: datetime) -> str:
    """A hold past its expiry is expired the instant it passes, before the job catches up."""
    if hold.status == Hold.ACTIVE and hold.expires_at <= now:
        return Hold.EXPIRED
    return hold.status


def hold_transaction_refs(hold: Hold) -> Sequence[str]:
    """The hold's transactions as "kind:id", oldest first: carried by the hold when it was
    loaded through ledger.selectors.holds_with_transaction_refs (and kept current by the
    services), read here otherwise."""
    refs = getattr(hold, "transaction_refs", None)
    if refs is None:
        refs = [f"{kind}:{txn_id}" for kind, txn_id in
                hold.transactions.order_by("created_at", "id").values_list("kind", "id")]
        hold.transaction_refs = refs  # type: ignore[attr-defined]
    return list(refs)


def hold_body(hold: Hold, *, now: datetime | None = None) -> HoldBody:
    refs = [ref.split(":", 1) for ref in hold_transaction_refs(hold)]
    return {
        "id": hold.id, "object": "hold", "account": hold.account_id, "amount": hold.amount,
        "currency": hold.currency, "captured_amount": hold.captured_amount,
        "released_amount": hold.released_amount,
        "status": effective_hold_status(hold, now or timezone.now()),  # type: ignore[typeddict-item]
        "expires_at": iso(hold.expires_at), "reference": hold.reference, "metadata": hold.metadata,
        "source_request_id": hold.source_request_id,
        "transactions": {"created": next((i for k, i in refs if k == "hold"), None),
                         "captures": [i for k, i in refs if k == "capture"],
                         "release": next((i for k, i in reversed(refs) if k in ("release", "expiry")), None)},
        "resolved_by": hold.resolved_by or None, "resolution_reason": hold.resolution_reason or None,
        "created_at": iso(hold.created_at), "resolved_at": iso_or_none(hold.resolved_at),
    }


class TrialBalanceLineBody(TypedDict):
    """Debits and credits, in minor units, of every entry in this currency effective before the
    period's `closed_until` (equal, since every transaction balances per currency)."""

    currency: str
    debits: int
    credits: int


class LedgerPeriodBody(TypedDict):
    """A closed ledger period: postings effective before `closed_until` are refused (422
    period_closed). `checkpoint` signed every account head at the close; the closing balances
    and chain heads are at `/v1/ledger_periods/{id}/closing_balances.csv`, signed."""

    id: str
    object: Literal["ledger_period"]
    closed_until: Timestamp
    trial_balance: list[TrialBalanceLineBody]
    accounts: int
    checkpoint: str
    created_at: Timestamp


def ledger_period_body(period: LedgerPeriod) -> LedgerPeriodBody:
    return {
        "id": period.id, "object": "ledger_period", "closed_until": iso(period.closed_until),
        "trial_balance": [{"currency": line["currency"], "debits": line["debits"], "credits": line["credits"]}
                          for line in period.trial_balance],
        "accounts": period.accounts, "checkpoint": period.checkpoint_id, "created_at": iso(period.created_at),
    }


class ReconciliationBreakBody(TypedDict):
    id: str
    object: Literal["reconciliation_break"]
    kind: str
    status: Literal["open", "resolved"]
    report: str | None
    run: str
    line_id: str | None
    provider_reference: str | None
    account: str | None
    expected: int | None
    actual: int | None
    currency: str | None
    detail: str
    assigned_to: str | None
    resolution: Literal["false_positive", "provider_claim", "adjusting_posting"] | None
    note: str | None
    adjustment_transaction: str | None
    resolved_by: str | None
    resolved_at: Timestamp | None
    created_at: Timestamp


def reconciliation_break_body(found: ReconciliationBreak) -> ReconciliationBreakBody:
    return {"id": found.id, "object": "reconciliation_break", "kind": found.kind,
            "status": found.status,  # type: ignore[typeddict-item]
            "report": found.report_id or None, "run": found.run_id, "line_id": found.line_id or None,
            "provider_reference": found.provider_reference or None, "account": found.account_id or None,
            "expected": found.expected, "actual": found.actual, "currency": found.currency or None,
            "detail": found.detail, "assigned_to": found.assigned_to or None,
            "resolution": found.resolution or None,  # type: ignore[typeddict-item]
            "note": found.note or None, "adjustment_transaction": found.adjustment_transaction_id or None,
            "resolved_by": found.resolved_by or None, "resolved_at": iso_or_none(found.resolved_at),
            "created_at": iso(found.created_at)}
