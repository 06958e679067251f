"""The per-account hash chain over entries (docs/architecture.md, "Evidence").

hash = sha256(previous entry's hash of this account + canonical content). An edit made behind
the application's back (even by a superuser with triggers disabled) breaks the chain visibly.
"""

import hashlib
from datetime import UTC, datetime

GENESIS = ""


def canonical_entry(*, entry_id: str, transaction_id: str, account_id: str, direction: str, amount: int,
                    currency: str, sequence: int, balance_after: int, created_at: datetime) -> str:
    return "|".join([entry_id, transaction_id, account_id, direction, str(amount), currency, str(sequence),
                     str(balance_after), created_at.astimezone(UTC).isoformat()])


def chain_hash(previous_hash: str, canonical: str) -> str:
    return hashlib.sha256(f"{previous_hash}|{canonical}".encode()).hexdigest()


def entry_hash(previous_hash: str, entry) -> str:
    return chain_hash(previous_hash, canonical_entry(
        entry_id=entry.id, transaction_id=entry.transaction_id, account_id=entry.account_id,
        direction=entry.direction, amount=entry.amount, currency=entry.currency, sequence=entry.sequence,
        balance_after=entry.balance_after, created_at=entry.created_at))
