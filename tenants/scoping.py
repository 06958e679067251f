"""Which tenants an actor may see or act on. Used by the API and by every admin class.

Permission checks ask django-guardian about the Tenant object itself; a global (model-level)
grant never opens a tenant, because object checks ignore model permissions.
"""

from __future__ import annotations

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from .models import Membership, Tenant
from .roles import VIEW, qualified


def tenants_for_user(user, perm: str = VIEW) -> QuerySet[Tenant]:
    if user is None or not user.is_authenticated or not user.is_active:
        return Tenant.objects.none()
    return get_objects_for_user(user, qualified(perm), klass=Tenant, accept_global_perms=False)


def tenant_ids_for_user(user, perm: str = VIEW) -> set[str]:
    cache_name = f"_zentra_tenant_ids_{perm}"
    cached = getattr(user, cache_name, None)
    if cached is None:
        cached = set(tenants_for_user(user, perm).values_list("id", flat=True))
        setattr(user, cache_name, cached)
    return cached


def user_has_tenant_perm(user, tenant_id: str, perm: str) -> bool:
    return tenant_id in tenant_ids_for_user(user, perm)


def roles_of(user) -> str:
    """A short description of the user's roles, for denial evidence."""
    if user is None or not user.is_authenticated:
        return ""
    if user.is_superuser:
        return "superuser"
    pairs = Membership.objects.filter(user=user).values_list("tenant__slug", "role")
    return ",".join(f"{slug}:{role}" for slug, role in pairs)[:100]
