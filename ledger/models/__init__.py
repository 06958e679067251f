"""The ledger's data, in two parts: money itself (core: accounts, entries, transactions, holds)
and what checks it and fixes its past (verification: reconciliation runs and breaks, signed
checkpoints, closed periods). Invariants are also enforced in PostgreSQL (the migrations).
Everything is importable from here, as migrations and the other apps name it."""

from .core import (
    ACCOUNT_TYPES,
    CLIENT_ACCOUNT_TYPES,
    CREDIT,
    DEBIT,
    MAX_AMOUNT,
    MAX_SHARDS,
    SYSTEM_ACCOUNT_TYPES,
    TRANSACTION_KINDS,
    Account,
    Hold,
    LedgerEntry,
    LedgerTransaction,
    logical_account_of,
    new_account_id,
    new_entry_id,
    new_hold_id,
    new_transaction_id,
    shard_row_id,
)
from .verification import (
    BREAK_RESOLUTIONS,
    SETTLEMENT_BREAK_KINDS,
    BreakComment,
    CheckpointHead,
    LedgerCheckpoint,
    LedgerPeriod,
    LedgerPeriodBalance,
    ReconciliationBreak,
    ReconciliationRun,
    new_break_id,
    new_checkpoint_id,
    new_period_id,
    new_reconciliation_id,
)

__all__ = [
    "ACCOUNT_TYPES", "BREAK_RESOLUTIONS", "CLIENT_ACCOUNT_TYPES", "CREDIT", "DEBIT", "MAX_AMOUNT", "MAX_SHARDS",
    "SETTLEMENT_BREAK_KINDS", "SYSTEM_ACCOUNT_TYPES", "TRANSACTION_KINDS", "Account", "BreakComment", "CheckpointHead",
    "Hold", "LedgerCheckpoint", "LedgerEntry", "LedgerPeriod", "LedgerPeriodBalance", "LedgerTransaction",
    "ReconciliationBreak", "ReconciliationRun", "logical_account_of", "new_account_id", "new_break_id",
    "new_checkpoint_id", "new_entry_id", "new_hold_id", "new_period_id", "new_reconciliation_id",
    "new_transaction_id", "shard_row_id",
]
