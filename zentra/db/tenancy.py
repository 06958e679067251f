"""Which tenant owns an id, whatever the current scope: the one SECURITY DEFINER lookup
(zentra/db/security.py), for the refusal path's evidence and for work that arrives with an id
but no tenant (a delivery a worker picks up, the provider an unauthenticated event names)."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections


def owner_tenant(table: str, object_id: str, *, using: str = DEFAULT_DB_ALIAS) -> str | None:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT zentra_owner_tenant(%s, %s)", [table, str(object_id)])
        row = cursor.fetchone()
    return row[0] if row else None


def api_key_tenant(prefix: str) -> str | None:
    """The tenant of an API key's public prefix (authentication, before any tenant is known)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT zentra_api_key_tenant(%s)", [prefix])
        row = cursor.fetchone()
    return row[0] if row else None
