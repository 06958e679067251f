"""Ledger models: accounts, postings, holds and reconciliation (core), payments (payments)."""

from .core import *  # noqa: F401,F403
from .core import (ACCOUNT_TYPES, CREDIT, DEBIT, SYSTEM_ACCOUNT_TYPES, TRANSACTION_KINDS, new_account_id,  # noqa: F401
                   new_entry_id, new_hold_id, new_reconciliation_id, new_transaction_id)
from .payments import (IntentTransition, PaymentIntent, PolicyDecision, PolicyRule, Provider,  # noqa: F401,E402
                       ProviderAttempt, ProviderEvent, ProviderRoute, Payout, new_intent_id, new_payout_id,
                       new_provider_id, new_route_id, new_rule_id)
