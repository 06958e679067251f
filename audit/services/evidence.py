"""Writes of evidence. Each runs on the evidence connection and commits on its own."""

from __future__ import annotations

import logging

from ..actors import Actor
from ..models import AccessDenial, RequestRecord

logger = logging.getLogger("zentra.audit")


def _text(value: str | None, limit: int) -> str:
    """Evidence text as PostgreSQL can store it: request paths may carry NUL, which text
    columns refuse; a refused insert would lose the evidence (or fail the request)."""
    return (value or "").replace("\x00", "\ufffd")[:limit]


def access_denial_record(*, actor: Actor | str, action: str, target: str = "", tenant_id: str = "",
                         role: str = "", target_tenant_id: str = "", reason: str = "",
                         request_id: str | None = "", actor_tenant_ids: list[str] | None = None) -> AccessDenial:
    """`tenant_id`: the tenant the actor acted for (an API key's); `actor_tenant_ids`: every
    tenant the actor belongs to (an operator's), so each tenant's compliance sees the refusal."""
    actor_label = actor.label if isinstance(actor, Actor) else ""
    tenants = sorted(set(actor_tenant_ids or []) | ({tenant_id} if tenant_id else set()))
    return AccessDenial.objects.create(
        actor=_text(str(actor), 200), actor_label=_text(actor_label, 200), action=_text(action, 200),
        target=_text(target, 200), tenant_id=tenant_id or "", role=_text(role, 100),
        target_tenant_id=target_tenant_id or "", reason=_text(reason, 500), request_id=request_id or "",
        actor_tenant_ids=tenants,
    )


def request_record_write(*, request_id: str, tenant_id: str, actor: str, method: str, path: str, status: int,
                         idempotency_key: str, idempotent_replay: bool, duration_ms: int) -> None:
    try:
        RequestRecord.objects.create(
            request_id=request_id, tenant_id=tenant_id, actor=_text(actor, 200), method=_text(method, 10),
            path=_text(path, 500), status=status, idempotency_key=_text(idempotency_key, 255),
            idempotent_replay=idempotent_replay, duration_ms=duration_ms,
        )
    except Exception:  # the response is already decided; losing one record must not turn it into a 500
        logger.exception("could not write the request record of %s", request_id)
