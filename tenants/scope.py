"""The database tenant context (zentra/db/scope.py) for operators, platform jobs and commands.

- An operator in the admin: every tenant they belong to (the platform superuser: every tenant,
  and rows of none), set by tenants.middleware.OperatorScopeMiddleware once the user is known.
- A platform job that spans tenants goes one tenant at a time (zentra.db.scope.each_tenant).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from zentra.db.scope import NO_TENANT, tenant_scope

from .models import Tenant
from .roles import VIEW
from .selectors import tenant_ids_for_user


def every_tenant_id() -> list[str]:
    # The tenants table is not tenant-owned: readable in any scope.
    return [*Tenant.objects.values_list("id", flat=True), NO_TENANT]


@contextmanager
def platform_scope() -> Iterator[None]:
    """Every tenant, and rows of none."""
    with tenant_scope(every_tenant_id()):
        yield


def operator_tenant_ids(user: Any) -> list[str]:
    """With the mark of no tenant: a refusal of an operator who belongs to none is evidence of no
    tenant, and must be writable (what the admin then lists stays scoped to the operator's tenants)."""
    if user.is_superuser:
        return every_tenant_id()
    return [*sorted(tenant_ids_for_user(user, VIEW)), NO_TENANT]
