"""The only place ledger rows are locked.

Accounts are always locked in primary-key order: two postings touching the same accounts
then queue behind each other instead of deadlocking (each would otherwise hold one row the
other waits for).
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import Account


def lock_accounts(account_ids: Iterable[str]) -> list[Account]:
    ids = sorted(set(account_ids))
    # Every posting passes here: a hand-written statement spares the ORM's query compilation.
    return list(Account.objects.raw(
        f"SELECT * FROM {Account._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids]))


def lock_transaction(transaction_id: str):
    """Serialises reversals of one transaction (a row lock, not an update: entries stay append-only)."""
    from .models import LedgerTransaction

    return (LedgerTransaction.objects.select_for_update(of=("self",)).select_related("tenant")
            .filter(pk=transaction_id).first())


def lock_holds(hold_ids, *, skip_locked: bool = False):
    """Holds are locked before any account (see ledger/services/holds.py), in pk order."""
    from .models import Hold

    ids = sorted(set(hold_ids))
    if not ids:
        return []
    return list(Hold.objects.select_for_update(of=("self",), skip_locked=skip_locked).select_related("tenant")
                .filter(pk__in=ids).order_by("pk"))
