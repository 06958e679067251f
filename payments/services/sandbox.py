"""The built-in sandbox providers: the pair every bootstrapped tenant starts with, and their
side of the world (they settle accepted payments and pay out pending payouts once their
configured delay has passed, through the same signed-event path as a real provider)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from tenants.models import Tenant
from zentra.errors import InvalidStateTransition

from ..adapters import sandbox_event_body, sign_event
from ..models import PaymentIntent, Payout, Provider, ProviderRoute
from .payouts import payout_resolve
from .provider_events import provider_event_receive

SANDBOX_PROVIDERS = (("sandbox-a", 10), ("sandbox-b", 20))


def sandbox_routes_ensure(*, tenant: Tenant, currency: str, actor: Actor, rail: str = "card") -> list[ProviderRoute]:
    """Two sandbox providers with a route each for `currency` (a, then b as failover)."""
    routes = []
    with transaction.atomic(), acting_as(actor):
        for name, priority in SANDBOX_PROVIDERS:
            provider, _ = Provider.objects.get_or_create(
                tenant=tenant, name=name, defaults={"secret": "prvsec_" + secrets.token_urlsafe(32)})
            route = ProviderRoute.objects.filter(tenant=tenant, provider=provider, rail=rail).first()
            if route is None:
                route = ProviderRoute(tenant=tenant, provider=provider, rail=rail, priority=priority,
                                      currencies=[currency])
                route._change_reason = "sandbox route"  # type: ignore[attr-defined]
                route.save()
            elif route.currencies and currency not in route.currencies:
                route.currencies = [*route.currencies, currency]
                route._change_reason = f"sandbox route takes {currency}"  # type: ignore[attr-defined]
                route.save(update_fields=["currencies"])
            routes.append(route)
    return routes


def sandbox_settle_due(*, limit: int = 200) -> int:
    """Once an accepted payment is `settle_delay_seconds` old, its sandbox provider sends its
    signed settlement event, through the same path as a real one."""
    settled = 0
    due = (PaymentIntent.objects.filter(status=PaymentIntent.PROCESSING, route__provider__kind="sandbox")
           .exclude(provider_reference="").select_related("route__provider").order_by("id")[:limit])
    now = timezone.now()
    for intent in due:
        assert intent.route is not None
        provider = intent.route.provider
        accepted = intent.provider_attempts.filter(outcome="accepted").order_by("-id").first()
        if accepted is None or accepted.created_at > now - timedelta(seconds=provider.settle_delay_seconds):
            continue
        body = sandbox_event_body(event_type="payment.settled", intent=intent)
        try:
            provider_event_receive(provider_id=provider.id, body=body, signature=sign_event(provider.secret, body))
            settled += 1
        except InvalidStateTransition:
            continue  # resolved meanwhile (canceled by review, settled by a replay): nothing to do
    return settled


def sandbox_payouts_due(*, limit: int = 200) -> int:
    """Sandbox providers pay out after their delay: approve pays, decline or outage fails."""
    done = 0
    now = timezone.now()
    actor = Actor.system("sandbox_provider")
    for payout in Payout.objects.filter(status=Payout.PENDING, provider__kind="sandbox").select_related(
            "provider").order_by("id")[:limit]:
        provider = payout.provider
        assert provider is not None
        if payout.created_at > now - timedelta(seconds=provider.settle_delay_seconds):
            continue
        paid = provider.mode == Provider.APPROVE and not provider.outage
        try:
            payout_resolve(payout_id=payout.id, paid=paid, actor=actor,
                           reason="" if paid else f"{provider.name} refused the payout",
                           provider_reference=f"sbxpo_{secrets.token_hex(10)}" if paid else "")
            done += 1
        except InvalidStateTransition:
            continue
    return done
