"""Reads of payments: the lists the API and the back office show."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import Tenant

from .models import PaymentIntent, Payout, PolicyRule


def intents_of(tenant: Tenant, *, status: str | None = None, source_account_id: str | None = None,
               ) -> QuerySet[PaymentIntent]:
    intents = PaymentIntent.objects.filter(tenant=tenant)
    if status is not None:
        intents = intents.filter(status=status)
    if source_account_id:
        intents = intents.filter(source_account_id=source_account_id)
    return intents


def payouts_of(tenant: Tenant) -> QuerySet[Payout]:
    return Payout.objects.filter(tenant=tenant)


def policy_rules_of(tenant: Tenant) -> QuerySet[PolicyRule]:
    return PolicyRule.objects.filter(tenant=tenant)
