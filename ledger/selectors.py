"""Reads of the ledger: balances and the shapes the API and the admin show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from .models import Account, LedgerEntry, LedgerTransaction


@dataclass(frozen=True)
class Balances:
    posted: int
    held: int
    available: int | None  # None: an overdraft without limit

    def as_dict(self) -> dict:
        return {"posted": self.posted, "held": self.held, "available": self.available}


def posted_balance_as_of(account: Account, as_of: datetime) -> int:
    """The balance_after of the account's last entry at or before `as_of`: one index lookup
    (entries of an account are dated in sequence order, which the database enforces)."""
    value = (LedgerEntry.objects.filter(account=account, created_at__lte=as_of)
             .order_by("-created_at", "-sequence").values_list("balance_after", flat=True).first())
    return value or 0


def account_balances(account: Account, *, as_of: datetime | None = None) -> Balances:
    posted = account.posted_balance if as_of is None else posted_balance_as_of(account, as_of)
    held = 0
    if account.allow_overdraft and account.overdraft_limit is None:
        available = None
    else:
        available = posted + (account.overdraft_limit or 0 if account.allow_overdraft else 0)
    return Balances(posted=posted, held=held, available=available)


def account_statement(account: Account) -> QuerySet[LedgerEntry]:
    """The account's entries; paginate on `sequence`, newest first."""
    return LedgerEntry.objects.filter(account=account)


def transactions_for_api(tenant) -> QuerySet[LedgerTransaction]:
    return (LedgerTransaction.objects.filter(tenant=tenant).select_related("tenant", "reversed_by")
            .prefetch_related("entries"))
