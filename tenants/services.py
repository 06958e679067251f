"""Writes on tenants, memberships and API keys. Each is one transaction and names its actor."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from audit.actors import Actor, acting_as

from .errors import InvalidRole, TenantSlugTaken
from .keys import api_key_material
from .models import ApiKey, Membership, Tenant
from .roles import ROLE_PERMISSIONS, TENANT_PERMISSIONS, qualified


def tenant_create(*, slug: str, name: str, actor: Actor) -> Tenant:
    with transaction.atomic(), acting_as(actor):
        if Tenant.objects.filter(slug=slug).exists():
            raise TenantSlugTaken(f"A tenant with slug {slug!r} already exists")
        tenant = Tenant(slug=slug, name=name or slug)
        tenant.full_clean()
        tenant.save()
        return tenant


def tenant_bootstrap(*, slug: str, name: str, currency: str, actor: Actor) -> tuple[Tenant, str]:
    """A tenant ready to move money: system accounts and sandbox provider routes for the
    currency, and a write API key."""
    from ledger.services.accounts import account_system_ensure
    from ledger.services.routes import sandbox_routes_ensure

    with transaction.atomic(), acting_as(actor):
        tenant = tenant_create(slug=slug, name=name, actor=actor)
        account_system_ensure(tenant=tenant, currency=currency, actor=actor)
        sandbox_routes_ensure(tenant=tenant, currency=currency, actor=actor)
        _, raw_key = api_key_create(tenant=tenant, name="bootstrap", scope=ApiKey.SCOPE_WRITE, actor=actor)
        return tenant, raw_key


def membership_set(*, tenant: Tenant, user, role: str, actor: Actor) -> Membership:
    """Give `user` exactly `role` on `tenant`, and the guardian object permissions of that role."""
    if role not in ROLE_PERMISSIONS:
        raise InvalidRole(f"Unknown role {role!r}; expected one of {', '.join(ROLE_PERMISSIONS)}")
    with transaction.atomic(), acting_as(actor):
        membership, created = Membership.objects.select_for_update().get_or_create(
            tenant=tenant, user=user, defaults={"role": role})
        if not created and membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
        _sync_role_permissions(user=user, tenant=tenant, role=role)
        return membership


def membership_remove(*, membership: Membership, actor: Actor) -> None:
    with transaction.atomic(), acting_as(actor):
        _sync_role_permissions(user=membership.user, tenant=membership.tenant, role=None)
        membership.delete()


def _sync_role_permissions(*, user, tenant: Tenant, role: str | None) -> None:
    wanted = ROLE_PERMISSIONS.get(role, frozenset()) if role else frozenset()
    for perm, _ in TENANT_PERMISSIONS:
        if perm in wanted:
            assign_perm(qualified(perm), user, tenant)
        else:
            remove_perm(qualified(perm), user, tenant)


def api_key_create(*, tenant: Tenant, name: str, scope: str, actor: Actor) -> tuple[ApiKey, str]:
    """Returns the key row and the raw key; the raw key is never stored and is shown once."""
    raw, prefix, key_hash = api_key_material()
    with transaction.atomic(), acting_as(actor):
        api_key = ApiKey(tenant=tenant, name=name, prefix=prefix, key_hash=key_hash, scope=scope,
                         created_by=str(actor))
        api_key.full_clean(exclude=["prefix", "key_hash"])
        api_key.save()
        return api_key, raw


def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    with transaction.atomic(), acting_as(actor):
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if locked.revoked_at is None:
            locked.revoked_at = timezone.now()
            locked.save(update_fields=["revoked_at"])
        return locked


def demo_user_ensure(*, username: str, password: str, actor: Actor):
    """Staff login for the demo (never a superuser: operators reach data through memberships)."""
    User = get_user_model()
    with transaction.atomic(), acting_as(actor):
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        if created or not user.check_password(password):
            user.set_password(password)
        user.is_staff = True
        user.is_superuser = False
        user.save()
        return user
