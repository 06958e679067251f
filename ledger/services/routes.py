"""Providers and routes: the built-in sandbox pair every bootstrapped tenant starts with."""

from __future__ import annotations

import secrets

from django.db import transaction

from audit.actors import Actor, acting_as

from ..models import Provider, ProviderRoute

SANDBOX_PROVIDERS = (("sandbox-a", 10), ("sandbox-b", 20))


def sandbox_routes_ensure(*, tenant, currency: str, actor: Actor, rail: str = "card") -> list[ProviderRoute]:
    """Two sandbox providers with a route each for `currency` (a, then b as failover)."""
    routes = []
    with transaction.atomic(), acting_as(actor):
        for name, priority in SANDBOX_PROVIDERS:
            provider, _ = Provider.objects.get_or_create(
                tenant=tenant, name=name, defaults={"secret": "prvsec_" + secrets.token_urlsafe(32)})
            route = ProviderRoute.objects.filter(tenant=tenant, provider=provider, rail=rail).first()
            if route is None:
                route = ProviderRoute.objects.create(tenant=tenant, provider=provider, rail=rail, priority=priority,
                                                     currencies=[currency])
            elif route.currencies and currency not in route.currencies:
                route.currencies = [*route.currencies, currency]
                route.save(update_fields=["currencies"])
            routes.append(route)
    return routes
