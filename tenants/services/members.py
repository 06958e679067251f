"""Who belongs to a tenant, in which role, and the guardian permissions that role grants."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from audit.actors import Actor, acting_as

from ..errors import InvalidRole
from ..models import Membership, Tenant
from ..roles import ROLE_PERMISSIONS, TENANT_PERMISSIONS, qualified


def membership_set(*, tenant: Tenant, user: Any, role: str, actor: Actor) -> Membership:
    """Give `user` exactly `role` on `tenant`, and the guardian object permissions of that role."""
    if role not in ROLE_PERMISSIONS:
        raise InvalidRole(f"Unknown role {role!r}; expected one of {', '.join(ROLE_PERMISSIONS)}",
                          errors=[{"field": "role", "message": "Unknown role."}])
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


def _sync_role_permissions(*, user: Any, tenant: Tenant, role: str | None) -> None:
    wanted = ROLE_PERMISSIONS.get(role, frozenset()) if role else frozenset()
    for perm, _ in TENANT_PERMISSIONS:
        if perm in wanted:
            assign_perm(qualified(perm), user, tenant)
        else:
            remove_perm(qualified(perm), user, tenant)


def staff_user_ensure(*, username: str, password: str, actor: Actor) -> Any:
    """A staff login (never a superuser: operators reach data through memberships)."""
    user_model = get_user_model()
    with transaction.atomic(), acting_as(actor):
        user, created = user_model.objects.get_or_create(username=username, defaults={"is_staff": True})
        if created or not user.check_password(password):
            user.set_password(password)
        user.is_staff = True
        user.is_superuser = False
        user.save()
        return user
