"""The ledger in the back office: one module per area."""

from . import accounts, breaks, holds, periods, transactions  # noqa: F401
