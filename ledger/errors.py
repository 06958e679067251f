"""Ledger errors, each with the problem code of docs/api.md.

ZentraError
  NotFound            -> not_found (404)
  InvalidStateTransition -> invalid_state_transition (409)
  LedgerError (422)
    AccountNotActive        account_not_active
    AccountNotEmpty         account_not_empty
    CurrencyMismatch        currency_mismatch
    InsufficientFunds       insufficient_funds
    UnbalancedTransaction   unbalanced_transaction
    AmountExceedsHold       amount_exceeds_hold
    PolicyDenied            policy_denied
    PeriodClosed            period_closed
    BalanceOutOfRange       balance_out_of_range
  SystemAccountProtected (403) system_account
  AlreadyReversed (409)     already_reversed
  HoldNotActive (409)       hold_not_active
  AccountUnderReview (409)  account_under_review
"""

from zentra.errors import Conflict, InvalidStateTransition, NotFound, Unprocessable, ZentraError  # noqa: F401


class LedgerError(Unprocessable):
    code = "ledger_error"
    title = "Ledger error"


class AccountNotActive(LedgerError):
    code = "account_not_active"
    title = "Account not active"


class AccountNotEmpty(LedgerError):
    code = "account_not_empty"
    title = "Account not empty"


class CurrencyMismatch(LedgerError):
    code = "currency_mismatch"
    title = "Currency mismatch"


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"
    title = "Insufficient funds"


class UnbalancedTransaction(LedgerError):
    code = "unbalanced_transaction"
    title = "Unbalanced transaction"


class AlreadyReversed(Conflict):
    code = "already_reversed"
    title = "Already reversed"


class HoldNotActive(Conflict):
    code = "hold_not_active"
    title = "Hold not active"


class AmountExceedsHold(LedgerError):
    code = "amount_exceeds_hold"
    title = "Amount exceeds hold"


class PolicyDenied(LedgerError):
    code = "policy_denied"
    title = "Policy denied"


class BalanceOutOfRange(LedgerError):
    """A well-formed posting the ledger cannot hold: a balance would leave the 64-bit range."""

    code = "balance_out_of_range"
    title = "Balance out of range"


class PeriodClosed(LedgerError):
    """The posting would take effect before the tenant's latest period close: closed periods take
    no new entries (correct them with a posting effective in the open period)."""
    code = "period_closed"
    title = "Period closed"


class SystemAccountProtected(ZentraError):
    """Reserve, settlement, payout (and later fees and disputes) accounts move only through the
    services that own them: no key or operator may freeze, close or post to them by hand."""
    status = 403
    code = "system_account"
    title = "System account"


class AccountUnderReview(Conflict):
    """The latest verification found a break on the account: nothing leaves it until an owner
    has resolved the break with a reason."""
    code = "account_under_review"
    title = "Account under review"
