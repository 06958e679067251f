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


def tenant_rename(*, tenant: Tenant, name: str, actor: Actor, reason: str) -> Tenant:
    """A tenant's display name (its slug and id never change); the reason stays in its history."""
    with transaction.atomic(), acting_as(actor):
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        locked.name = name
        locked.full_clean()
        locked._change_reason = reason or "renamed"  # type: ignore[attr-defined]
        locked.save(update_fields=["name"])
        return locked
