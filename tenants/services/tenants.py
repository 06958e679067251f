"""Tenants: created once per slug (the set-up commands in backoffice/ add their accounts)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.actors import Actor, acting_as
from audit.services.evidence import access_denial_record
from zentra.errors import ValidationFailed

from ..errors import PlatformOnly, TenantSlugTaken
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


def _is_platform(actor: Actor) -> bool:
    if actor.kind == "system":
        return True
    return actor.user_id is not None and get_user_model().objects.filter(
        pk=actor.user_id, is_active=True, is_superuser=True).exists()


def tenant_rate_limits_set(*, tenant: Tenant, per_second: int | None, per_minute: int | None, actor: Actor,
                           reason: str) -> Tenant:
    """The tenant's own request budget per API key (None: the platform's default). Only the
    platform sets it: a tenant's owner raising their own limits would take capacity from the
    other tenants. The change and its reason stay in the tenant's history."""
    if not _is_platform(actor):
        access_denial_record(actor=actor, tenant_id=tenant.pk, action="set rate limits", target=tenant.pk,
                             target_tenant_id=tenant.pk, reason="only the platform superuser sets rate limits")
        raise PlatformOnly("Only the platform superuser sets a tenant's rate limits")
    with transaction.atomic(), acting_as(actor):
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        locked.rate_limit_per_second, locked.rate_limit_per_minute = per_second, per_minute
        try:
            locked.full_clean()
        except ValidationError as exc:
            raise ValidationFailed("Rate limits must be positive whole numbers (or empty for the default)",
                                   errors=[{"field": field, "message": " ".join(messages)}
                                           for field, messages in exc.message_dict.items()])
        locked._change_reason = reason or "rate limits"  # type: ignore[attr-defined]
        locked.save(update_fields=["rate_limit_per_second", "rate_limit_per_minute"])
        return locked
