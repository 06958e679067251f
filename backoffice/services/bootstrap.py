"""A tenant ready to move money, in one transaction: the tenant, its system accounts for a
currency, two sandbox provider routes and a write API key."""

from __future__ import annotations

from django.db import transaction

from audit.actors import Actor, acting_as
from ledger.services.accounts import account_system_ensure
from payments.services.sandbox import sandbox_routes_ensure
from tenants.models import ApiKey, Tenant
from tenants.services.api_keys import api_key_create
from tenants.services.tenants import tenant_create


def tenant_bootstrap(*, slug: str, name: str, currency: str, actor: Actor) -> tuple[Tenant, str]:
    """Returns the tenant and its first API key (raw, shown once)."""
    with transaction.atomic(), acting_as(actor):
        tenant = tenant_create(slug=slug, name=name, actor=actor)
        account_system_ensure(tenant=tenant, currency=currency, actor=actor)
        sandbox_routes_ensure(tenant=tenant, currency=currency, actor=actor)
        _, raw_key = api_key_create(tenant=tenant, name="bootstrap", scope=ApiKey.SCOPE_WRITE, actor=actor)
        return tenant, raw_key
