"""The refusal of a staff login (the admin, sign-in), written once: one AccessDenial naming
every tenant of the login, so each of their compliance reviewers sees it, and its roles."""

from __future__ import annotations

from typing import Any

from audit.actors import Actor
from audit.services.evidence import access_denial_record
from zentra.db.scope import NO_TENANT, tenant_scope

from ..selectors import member_tenant_ids, roles_of


def staff_denial_record(*, user: Any, actor: Actor, action: str, target: str, reason: str, request_id: str | None,
                        target_tenant_id: str = "") -> None:
    """`user` may be None (a sign-in with an unknown username): then no tenant is named."""
    tenants = member_tenant_ids(user) if user is not None else []
    role = roles_of(user) if user is not None else ""
    # Written in the scope of the tenants it names: before sign-in the request has none.
    with tenant_scope([*tenants, NO_TENANT]):
        access_denial_record(actor=actor, role=role, action=action, target=target, reason=reason,
                             tenant_id=tenants[0] if len(tenants) == 1 else "", actor_tenant_ids=tenants,
                             target_tenant_id=target_tenant_id, request_id=request_id)
