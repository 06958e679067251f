"""Which tenants an actor may reach, and the one tenant-scoped lookup every layer uses.

Permission checks ask django-guardian about the Tenant object itself; a global (model-level)
grant never opens a tenant, because object checks ignore model permissions.

`tenant_object` is the only place that answers "this id, within these tenants": an object of
another tenant is a 404 exactly like a missing one, and the attempt leaves an AccessDenial. API
views, services and the admin all call it, so the rule and its evidence are written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, router
from django.db.models import Model, QuerySet
from guardian.shortcuts import get_objects_for_user

from audit.actors import Actor
from audit.context import current_operation, current_request_id
from audit.services.evidence import access_denial_record
from zentra.db.scope import scope_tenant_ids, tenant_scope
from zentra.db.tenancy import owner_tenant
from zentra.errors import NotFound

from .models import Membership, Tenant
from .roles import VIEW, qualified

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Scope:
    """Who is looking, and which tenants they may see (None: every tenant, the platform superuser)."""

    actor: Actor
    tenant_ids: frozenset[str] | None
    role: str = ""
    # An operator's roles are looked up only when a denial needs them as evidence.
    user: Any = None

    @classmethod
    def of_tenant(cls, tenant_id: str, actor: Actor, role: str = "") -> Scope:
        """An API key or a service acting for exactly one tenant."""
        return cls(actor=actor, tenant_ids=frozenset({tenant_id}), role=role or actor.role)

    @property
    def acting_tenant_id(self) -> str:
        """The tenant the actor acts for, when there is exactly one (evidence names it)."""
        if self.tenant_ids is not None and len(self.tenant_ids) == 1:
            return next(iter(self.tenant_ids))
        return ""

    def allows(self, tenant_id: str) -> bool:
        return self.tenant_ids is None or tenant_id in self.tenant_ids

    def role_for_evidence(self) -> str:
        return self.role or (roles_of(self.user) if self.user is not None else "")

    def tenants_for_evidence(self) -> list[str]:
        """Every tenant the actor belongs to: each one's compliance sees the actor's refusals."""
        if self.user is not None:
            return member_tenant_ids(self.user)
        return sorted(self.tenant_ids or [])


def scoped(queryset: QuerySet[M], scope: Scope, *, tenant_field: str = "tenant_id") -> QuerySet[M]:
    if scope.tenant_ids is None:
        return queryset
    if len(scope.tenant_ids) == 1:
        return queryset.filter(**{tenant_field: scope.acting_tenant_id})
    return queryset.filter(**{f"{tenant_field}__in": scope.tenant_ids})


def tenant_object(source: type[M] | QuerySet[M], object_id: str, *, scope: Scope, action: str, label: str,
                  field: str | None = None, lock: bool = False, tenant_field: str = "tenant_id") -> M:
    """The object with this id among the scope's tenants, loaded once (and row-locked with
    `lock`, inside the caller's transaction). Otherwise NotFound, with an AccessDenial when the
    id exists under another tenant."""
    queryset = source if isinstance(source, QuerySet) else source._default_manager.all()
    queryset = scoped(queryset.filter(pk=object_id), scope, tenant_field=tenant_field)
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    found = list(queryset[:1])
    if found:
        return found[0]
    raise object_not_found(queryset.model, object_id, scope=scope, action=action, label=label, field=field,
                           tenant_field=tenant_field)


def object_not_found(model: type[Model], object_id: str, *, scope: Scope, action: str, label: str,
                     field: str | None = None, tenant_field: str = "tenant_id") -> NotFound:
    """The NotFound for an id the scope does not reach, after recording the attempt when the
    object exists under another tenant. Returned, for the caller to raise. Inside an API call
    the evidence names the call (`POST /v1/...`) as the action; elsewhere, `action`."""
    owner = owner_tenant_of(model, object_id, tenant_field=tenant_field)
    if owner is not None and not scope.allows(owner):
        access_denial_record(actor=scope.actor, tenant_id=scope.acting_tenant_id, role=scope.role_for_evidence(),
                             actor_tenant_ids=scope.tenants_for_evidence(), action=current_operation() or action,
                             target=str(object_id), target_tenant_id=str(owner),
                             reason=f"{label} belongs to another tenant", request_id=current_request_id())
    errors = [{"field": field, "message": f"No such {label}."}] if field else None
    return NotFound(f"No such {label}: {object_id}", errors=errors)


def owner_tenant_of(model: type[Model], object_id: str, *, tenant_field: str = "tenant_id") -> str | None:
    """Which tenant owns this id, whatever the scope: row-level security hides other tenants'
    rows from the application role, so the question goes to the one SECURITY DEFINER function
    that answers it (zentra/db/security.py), and only on this refusal path."""
    if tenant_field != "tenant_id":  # the Tenant itself: its table is not tenant-owned
        try:
            return model._default_manager.filter(pk=object_id).values_list(tenant_field, flat=True).first()
        except (ValueError, TypeError):  # an id that cannot even be a primary key of this model
            return None
    return owner_tenant(model._meta.db_table, object_id, using=router.db_for_read(model) or DEFAULT_DB_ALIAS)


def first_missing(wanted: Iterable[str], found: Iterable[str]) -> str | None:
    have = set(found)
    return next((object_id for object_id in wanted if object_id not in have), None)


# --- who may reach which tenant ------------------------------------------------------------

def tenants_for_user(user: Any, perm: str = VIEW) -> QuerySet[Tenant]:
    if user is None or not user.is_authenticated or not user.is_active:
        return Tenant.objects.none()
    tenants: QuerySet[Tenant] = get_objects_for_user(user, qualified(perm), klass=Tenant, accept_global_perms=False)
    return tenants


def tenant_ids_for_user(user: Any, perm: str = VIEW) -> set[str]:
    cache_name = f"_zentra_tenant_ids_{perm}"
    cached: set[str] | None = getattr(user, cache_name, None)
    if cached is None:
        cached = set(tenants_for_user(user, perm).values_list("id", flat=True))
        setattr(user, cache_name, cached)
    return cached


def user_scope(user: Any, perm: str = VIEW) -> Scope:
    """An operator in the admin: every tenant where they hold `perm` (all of them for the
    platform superuser)."""
    ids = None if user.is_superuser else frozenset(tenant_ids_for_user(user, perm))
    return Scope(actor=Actor.for_user(user), tenant_ids=ids, user=user)


def user_has_tenant_perm(user: Any, tenant_id: str, perm: str) -> bool:
    return tenant_id in tenant_ids_for_user(user, perm)


def own_memberships(user: Any) -> AbstractContextManager[None]:
    """Row-level security lets a user read their own memberships whatever the tenant context
    (a sign-in refused before any tenant is known still names the login's tenants)."""
    return tenant_scope(scope_tenant_ids(), user_id=user.pk)


def member_tenant_ids(user: Any) -> list[str]:
    """The tenants a user is a member of, whatever the role."""
    if user is None or not user.is_authenticated:
        return []
    with own_memberships(user):
        return sorted(Membership.objects.filter(user=user).values_list("tenant_id", flat=True))


def roles_of(user: Any) -> str:
    """A short description of the user's roles, for denial evidence."""
    if user is None or not user.is_authenticated:
        return ""
    if user.is_superuser:
        return "superuser"
    with own_memberships(user):
        pairs = list(Membership.objects.filter(user=user).values_list("tenant__slug", "role"))
    return ",".join(f"{slug}:{role}" for slug, role in pairs)[:100]
