"""Reads of the ledger: balances and the shapes the API and the admin show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .models import Account


@dataclass(frozen=True)
class Balances:
    posted: int
    held: int
    available: int | None  # None: an overdraft without limit

    def as_dict(self) -> dict:
        return {"posted": self.posted, "held": self.held, "available": self.available}


def account_balances(account: Account, *, as_of: datetime | None = None) -> Balances:
    posted = account.posted_balance
    held = 0
    if account.allow_overdraft and account.overdraft_limit is None:
        available = None
    else:
        available = posted + (account.overdraft_limit or 0 if account.allow_overdraft else 0)
    return Balances(posted=posted, held=held, available=available)
