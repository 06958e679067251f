"""The outbox half of webhook delivery: events are written inside the caller's transaction."""

from __future__ import annotations

from django.db import connection

from audit.actors import Actor
from audit.context import current_request_id

from .models import Event


def event_emit(*, tenant, type: str, resource_id: str, data_object: dict, actor: Actor) -> Event:
    """Record that `type` happened to the resource. Must run inside the transaction of the
    change itself, so that a rollback takes the event with it."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it records")
    return Event.objects.create(
        tenant=tenant, type=type, resource_id=resource_id, data={"object": data_object},
        actor=str(actor), request_id=current_request_id() or "",
    )
