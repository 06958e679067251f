"""The outbox: an event, and one delivery per subscribed endpoint, written inside the
transaction of the change they record. They exist if and only if the change committed.
Sending happens later (services/delivery.py), nudged right after commit and swept by the
periodic relay.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from celery import current_app
from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.context import current_request_id
from tenants.models import Tenant

from .. import event_types
from ..models import Delivery, Event, WebhookEndpoint

logger = logging.getLogger("zentra.webhooks")

RELAY_TASK = "webhooks.tasks.relay"


def event_emit(*, tenant: Tenant, type: str, resource_id: str, data_object: dict[str, Any], actor: Actor,
               exclude_endpoint_ids: frozenset[str] = frozenset()) -> Event:
    """Record that `type` happened to the resource, with a delivery for every enabled endpoint
    subscribed to it. Must run inside the transaction of the change itself, so that a
    rollback takes the event and its deliveries with it. The event keeps the id of the
    request that caused it: that is how a retried request learns its change committed."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it records")
    event = Event(tenant=tenant, type=type, resource_id=resource_id, data={"object": data_object},
                  actor=str(actor), request_id=current_request_id() or "", created_at=timezone.now())
    # One round trip for the event and its deliveries: every posting emits an event, so this
    # is on the hot path. Subscriptions match in SQL (a type, its family "hold.*", or "*").
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH new_event AS (
                    INSERT INTO {Event._meta.db_table} (id, tenant_id, type, resource_id, data, actor, request_id,
                                                       created_at)
                    VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s) RETURNING id)
                INSERT INTO {Delivery._meta.db_table} (id, tenant_id, event_id, endpoint_id, status, attempts_count,
                                                       next_attempt_at, lease_owner, requested_by, created_at)
                SELECT zentra_new_id('del'), %s, new_event.id, endpoint.id, 'pending', 0, %s, '', '', %s
                FROM new_event, {WebhookEndpoint._meta.db_table} AS endpoint
                WHERE endpoint.tenant_id = %s AND endpoint.status = 'enabled' AND endpoint.deleted_at IS NULL
                  AND endpoint.event_types ?| %s AND NOT (endpoint.id = ANY(%s))
                RETURNING id""",
            [event.id, tenant.id, type, resource_id, json.dumps(event.data), event.actor, event.request_id,
             event.created_at, tenant.id, event.created_at, event.created_at, tenant.id,
             event_types.subscription_patterns(type), sorted(exclude_endpoint_ids)])
        if cursor.fetchall():
            transaction.on_commit(nudge_relay)
    event._state.adding = False
    event._state.db = "default"
    return event


_NUDGE_BACKOFF_SECONDS = 10.0
_nudge_paused_until = 0.0


def nudge_relay() -> None:
    """Ask a worker to send now rather than at the next sweep. Best effort: with the broker
    down the change has committed anyway and the periodic relay sends it later. After a
    failure, nudges pause for a few seconds so requests do not each wait on a dead broker.
    The task is named, not imported: tasks sit above the services they wrap."""
    global _nudge_paused_until

    if time.monotonic() < _nudge_paused_until:
        return
    try:
        current_app.send_task(RELAY_TASK, retry=False)
    except Exception as exc:  # any broker failure; the delivery row is already safe in PostgreSQL
        _nudge_paused_until = time.monotonic() + _NUDGE_BACKOFF_SECONDS
        logger.warning("could not nudge the webhook relay (%s); the periodic sweep will send", exc)
