"""Tenants: created once per slug (the set-up commands in backoffice/ add their accounts)."""

from __future__ import annotations

from django.db import transaction

from audit.actors import Actor, acting_as

from ..errors import TenantSlugTaken
from ..models import Tenant


def tenant_create(*, slug: str, name: str, actor: Actor) -> Tenant:
    with transaction.atomic(), acting_as(actor):
        if Tenant.objects.filter(slug=slug).exists():
            raise TenantSlugTaken(f"A tenant with slug {slug!r} already exists")
        tenant = Tenant(slug=slug, name=name or slug)
        tenant.full_clean()
        tenant.save()
        return tenant
