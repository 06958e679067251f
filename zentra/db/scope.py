"""Which tenants the database may show this request, job or command (docs/security.md, "Row-level
security").

Every tenant-owned table has a policy `tenant_id = ANY(zentra_tenant_ids())`: the application role
sees a row only when its tenant is in the context set inside the current transaction. The context
is a list (an operator may belong to several tenants), set from here by the backend
(zentra/db/backend) with `set_config(..., true)` at the start of every transaction, so it never
outlives the transaction and works behind PgBouncer in transaction pooling. Nothing set means
nothing visible: a code path that forgot its scope fails closed.

Who sets it: API authentication (the key's tenant), the admin middleware (the operator's
tenants), platform jobs tenant by tenant, management commands (a shell operator: every tenant).
The application-level scoping (tenants.selectors) stays; this is the second wall.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

# Rows that belong to no tenant (evidence of unauthenticated requests) are visible under this mark.
NO_TENANT = "~"

_tenant_ids: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("zentra_db_tenant_ids", default=())
_user_id: contextvars.ContextVar[str] = contextvars.ContextVar("zentra_db_user_id", default="")


def db_context() -> tuple[str, str]:
    """The values of `zentra.tenant_ids` and `zentra.user_id` for the next transaction."""
    return ",".join(_tenant_ids.get()), _user_id.get()


def scope_tenant_ids() -> tuple[str, ...]:
    return _tenant_ids.get()


def scope_set(tenant_ids: Iterable[str], *, user_id: str | int | None = None) -> tuple[contextvars.Token, ...]:
    """Enter a scope until `scope_reset` (for code that cannot use a `with` block, such as API
    authentication, whose request the middleware ends)."""
    tokens: list[contextvars.Token[Any]] = [_tenant_ids.set(tuple(sorted(set(tenant_ids))))]
    if user_id is not None:
        tokens.append(_user_id.set(str(user_id)))
    return tuple(tokens)


def scope_reset(tokens: tuple[contextvars.Token, ...]) -> None:
    for token in reversed(tokens):
        token.var.reset(token)


@contextmanager
def tenant_scope(tenant_ids: Iterable[str], *, user_id: str | int | None = None) -> Iterator[None]:
    tokens = scope_set(tenant_ids, user_id=user_id)
    try:
        yield
    finally:
        scope_reset(tokens)


@contextmanager
def scope_widened(tenant_ids: Iterable[str]) -> Iterator[None]:
    """The current scope plus `tenant_ids` (a service that creates a tenant and then acts in it)."""
    with tenant_scope([*_tenant_ids.get(), *tenant_ids]):
        yield


def each_tenant(job: Callable[[], int]) -> int:
    """Run a platform job (relay, expiry, sandbox ticks, purges) once per tenant, within that
    tenant's scope alone, and sum what it returns: the job sees exactly what it would see for
    that tenant, and never two tenants at once. (The tenants table itself is not tenant-owned;
    it is read by name here because the core must not import the tenants app.)"""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tenants_tenant ORDER BY id")
        tenant_ids = [row[0] for row in cursor.fetchall()]
    total = 0
    for tenant_id in tenant_ids:
        with tenant_scope([tenant_id]):
            total += job()
    return total
