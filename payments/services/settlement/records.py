"""The ledger's record of each money movement a provider books, written in the very transaction
that posts it: a settled charge (payments/services/provider_events.py), a paid payout
(payments/services/payouts.py). This is the real-time half of reconciliation: a settlement
event is matched to its intent the moment it arrives, and a report's line later confirms it."""

from __future__ import annotations

from datetime import datetime

from ...models import PaymentIntent, Payout, Provider, SettlementRecord


def settlement_record_charge(*, intent: PaymentIntent, provider: Provider, transaction_id: str,
                             settled_at: datetime) -> SettlementRecord:
    return SettlementRecord.objects.create(
        tenant_id=intent.tenant_id, provider=provider, type="charge", provider_reference=intent.provider_reference,
        currency=intent.currency, gross=intent.amount, settled_at=settled_at, payment_intent=intent,
        transaction_id=transaction_id)


def settlement_record_payout(*, payout: Payout, settled_at: datetime) -> SettlementRecord:
    assert payout.provider_id is not None and payout.provider_reference
    return SettlementRecord.objects.create(
        tenant_id=payout.tenant_id, provider_id=payout.provider_id, type="payout",
        provider_reference=payout.provider_reference, currency=payout.currency, gross=-payout.amount,
        settled_at=settled_at, payout=payout)
