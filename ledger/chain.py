"""The per-account hash chain over entries (docs/architecture.md, "Evidence").

link = HMAC-SHA256(ledger key, previous entry's hash of this account + "|" + canonical content),
with the key's id stored on the entry. Entries written before the ledger had a key carry the
plain SHA-256 link under the key id `legacy`, and a signed checkpoint seals them. An edit made
behind the application's back (even by a superuser with triggers disabled) breaks the chain
visibly, and without the key nobody can compute links that verify.
"""

from __future__ import annotations

from datetime import UTC, datetime

from zentra.keys import LEGACY_KEY_ID, ledger_keyring

GENESIS = ""


def canonical_entry(*, entry_id: str, transaction_id: str, account_id: str, direction: str, amount: int,
                    currency: str, sequence: int, balance_after: int, created_at: datetime) -> str:
    return "|".join([entry_id, transaction_id, account_id, direction, str(amount), currency, str(sequence),
                     str(balance_after), created_at.astimezone(UTC).isoformat()])


def chain_hash(previous_hash: str, canonical: str, key_id: str = LEGACY_KEY_ID) -> str:
    """The link under `key_id` (KeyError when this process does not hold that key)."""
    return ledger_keyring().link(key_id, f"{previous_hash}|{canonical}")


def current_key_id() -> str:
    return ledger_keyring().current_id


def entry_hash(previous_hash: str, entry) -> str:
    return chain_hash(previous_hash, canonical_entry(
        entry_id=entry.id, transaction_id=entry.transaction_id, account_id=entry.account_id,
        direction=entry.direction, amount=entry.amount, currency=entry.currency, sequence=entry.sequence,
        balance_after=entry.balance_after, created_at=entry.created_at), entry.key_id)
