"""Writes of evidence. Each runs on the evidence connection and commits on its own.

Most refusals and calls get a row each. Refusals of callers who proved no identity (no valid
API key, no valid signature) and calls over their budget are *counted* instead: repeats within
ZENTRA_EVIDENCE_REPEAT_WINDOW_SECONDS that share what makes them the same (client address,
action or route, reason or status) add one to the first one's row, so a flood of them writes
one row per window, not one per call (audit/models.py).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections, models, router
from django.utils import timezone

from ..actors import Actor
from ..context import current_client_address
from ..models import AccessDenial, RequestRecord

logger = logging.getLogger("zentra.audit")
M = TypeVar("M", bound=models.Model)


def _text(value: str | None, limit: int) -> str:
    """Evidence text as PostgreSQL can store it: request paths may carry NUL, which text
    columns refuse; a refused insert would lose the evidence (or fail the request)."""
    return (value or "").replace("\x00", "\ufffd")[:limit]


def repeat_key(kind: str, *parts: str) -> str:
    """What makes two counted rows one: their kind, their parts, and the window they fall in
    (windows are aligned on the epoch, so every process agrees where one ends)."""
    window = max(1, int(settings.ZENTRA_EVIDENCE_REPEAT_WINDOW_SECONDS))
    slot = int(timezone.now().timestamp()) // window
    return hashlib.sha256("\x1f".join([kind, str(window), str(slot), *parts]).encode()).hexdigest()


def _count(model: type[M], values: dict[str, Any], key: str) -> M:
    """Insert the row, or add one repeat to the row holding `key`, in one statement: concurrent
    repeats neither lose a count nor write a second row. Returns the row as it now stands."""
    connection = connections[router.db_for_write(model)]
    now = timezone.now()
    row = {**values, "created_at": now, "last_seen_at": now, "repeat_key": key, "repeat_count": 1}
    fields = [field for field in model._meta.concrete_fields if field.name in row]
    assert len(fields) == len(row), sorted(set(row) - {field.name for field in fields})
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    sql = (f"INSERT INTO {table} ({', '.join(quote(str(field.column)) for field in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))}) "
           # The predicate names the partial unique index (repeat_key IS NOT NULL) it conflicts on.
           f"ON CONFLICT (repeat_key) WHERE repeat_key IS NOT NULL DO UPDATE "
           f"SET repeat_count = {table}.repeat_count + 1, last_seen_at = EXCLUDED.last_seen_at "
           f"RETURNING {', '.join(quote(str(field.column)) for field in model._meta.concrete_fields)}")
    params = [field.get_db_prep_save(row[field.name], connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    assert found is not None  # INSERT ... ON CONFLICT DO UPDATE always returns its row
    return model.from_db(connection.alias, [field.attname for field in model._meta.concrete_fields], found)


def access_denial_record(*, actor: Actor | str, action: str, target: str = "", tenant_id: str = "",
                         role: str = "", target_tenant_id: str = "", reason: str = "",
                         request_id: str | None = "", actor_tenant_ids: list[str] | None = None,
                         unauthenticated: bool = False, client_address: str | None = None) -> AccessDenial:
    """`tenant_id`: the tenant the actor acted for (an API key's); `actor_tenant_ids`: every
    tenant the actor belongs to (an operator's), so each tenant's compliance sees the refusal.

    `unauthenticated`: the caller proved no identity (an unknown provider, a bad signature, a
    revoked key). Such refusals are counted per client address, tenant, action and reason
    (the row keeps the first attempt's actor and target). `client_address` defaults to the
    address of the request being served."""
    actor_label = actor.label if isinstance(actor, Actor) else ""
    tenants = sorted(set(actor_tenant_ids or []) | ({tenant_id} if tenant_id else set()))
    address = client_address if client_address is not None else current_client_address()
    values: dict[str, Any] = dict(
        actor=_text(str(actor), 200), actor_label=_text(actor_label, 200), action=_text(action, 200),
        target=_text(target, 200), tenant_id=tenant_id or "", role=_text(role, 100),
        target_tenant_id=target_tenant_id or "", reason=_text(reason, 500), request_id=request_id or "",
        actor_tenant_ids=tenants, client_address=address or None,
    )
    if not unauthenticated:
        return AccessDenial.objects.create(**values)
    key = repeat_key("denial", address or "", values["tenant_id"], values["action"], values["reason"])
    return _count(AccessDenial, values, key)


def request_record_write(*, request_id: str, tenant_id: str, actor: str, method: str, path: str, status: int,
                         idempotency_key: str, idempotent_replay: bool, duration_ms: int,
                         client_request_id: str = "", client_address: str | None = None,
                         counted_by_route: str | None = None) -> None:
    """One row per call; with `counted_by_route` (the URL pattern the path matched), calls of one
    client address, tenant and actor to that route ending with the same status are counted on
    one row (refusals before a key admitted the call, and calls over their budget)."""
    values: dict[str, Any] = dict(
        request_id=request_id, client_request_id=_text(client_request_id, 64), tenant_id=tenant_id,
        actor=_text(actor, 200), method=_text(method, 10), path=_text(path, 500), status=status,
        idempotency_key=_text(idempotency_key, 255), idempotent_replay=idempotent_replay, duration_ms=duration_ms,
        client_address=client_address or None,
    )
    try:
        if counted_by_route is None:
            RequestRecord.objects.create(**values)
        else:
            key = repeat_key("request", client_address or "", tenant_id, values["actor"], values["method"],
                             _text(counted_by_route, 500), str(status))
            _count(RequestRecord, values, key)
    except Exception:  # the response is already decided; losing one record must not turn it into a 500
        logger.exception("could not write the request record of %s", request_id)
