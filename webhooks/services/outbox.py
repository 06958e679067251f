"""The outbox: an event, and one delivery per subscribed endpoint, written inside the
transaction of the change they record. They exist if and only if the change committed.
Sending happens later (services/delivery.py), nudged right after commit and swept by the
periodic relay.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.context import current_request_id
from tenants.models import Tenant
from zentra.db.rowsets import rows_param, rows_select

from .. import event_types
from ..models import Delivery, Event, WebhookEndpoint

logger = logging.getLogger("zentra.webhooks")

RELAY_TASK = "webhooks.tasks.relay"


@dataclass(frozen=True)
class EventInput:
    """One event to record: what happened (`type`) to which resource, and its public shape."""

    type: str
    resource_id: str
    data_object: dict[str, Any]


def event_emit(*, tenant: Tenant, type: str, resource_id: str, data_object: dict[str, Any], actor: Actor,
               exclude_endpoint_ids: frozenset[str] = frozenset()) -> Event:
    """Record that `type` happened to the resource, with a delivery for every enabled endpoint
    subscribed to it. Must run inside the transaction of the change itself, so that a
    rollback takes the event and its deliveries with it. The event keeps the id of the
    request that caused it: that is how a retried request learns its change committed."""
    return events_emit(tenant=tenant, events=[EventInput(type, resource_id, data_object)], actor=actor,
                       exclude_endpoint_ids=exclude_endpoint_ids)[0]


_EVENT_COLUMNS = (("id", "varchar"), ("type", "varchar"), ("resource_id", "varchar"), ("data", "jsonb"),
                  ("patterns", "jsonb"))


def events_emit(*, tenant: Tenant, events: Sequence[EventInput], actor: Actor,
                exclude_endpoint_ids: frozenset[str] = frozenset()) -> list[Event]:
    """event_emit for many events of one tenant (the expiry job's batch), in one statement."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it records")
    now = timezone.now()
    actor_label, request_id = str(actor), current_request_id() or ""
    created = [Event(tenant=tenant, type=given.type, resource_id=given.resource_id,
                     data={"object": given.data_object}, actor=actor_label, request_id=request_id, created_at=now)
               for given in events]
    # One round trip for the events and their deliveries: every posting emits an event, so this
    # is on the hot path. Subscriptions match in SQL (a type, its family "hold.*", or "*").
    rows = [[event.id, event.type, event.resource_id, event.data, event_types.subscription_patterns(event.type)]
            for event in created]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH given AS ({rows_select(_EVENT_COLUMNS)}),
                new_events AS (
                    INSERT INTO {Event._meta.db_table} (id, tenant_id, type, resource_id, data, actor, request_id,
                                                       created_at)
                    SELECT id, %s, type, resource_id, data, %s, %s, %s FROM given RETURNING id)
                INSERT INTO {Delivery._meta.db_table} (id, tenant_id, event_id, endpoint_id, status, attempts_count,
                                                       next_attempt_at, lease_owner, requested_by, created_at)
                SELECT zentra_new_id('del'), %s, given.id, endpoint.id, 'pending', 0, %s, '', '', %s
                FROM given, {WebhookEndpoint._meta.db_table} AS endpoint
                WHERE endpoint.tenant_id = %s AND endpoint.status = 'enabled' AND endpoint.deleted_at IS NULL
                  AND endpoint.event_types ?| ARRAY(SELECT jsonb_array_elements_text(given.patterns))
                  AND NOT (endpoint.id = ANY(%s))
                RETURNING id""",
            [rows_param(_EVENT_COLUMNS, rows), tenant.id, actor_label, request_id, now, tenant.id, now, now,
             tenant.id, sorted(exclude_endpoint_ids)])
        if cursor.fetchall():
            nudge_relay_on_commit()
    for event in created:
        event._state.adding = False
        event._state.db = "default"
    return created


def nudge_relay_on_commit() -> None:
    """Nudge the relay once the transaction commits: once per transaction, however many events
    it records (a batch of expiries, a demo's seeding), not once per event, each nudge being a
    relay task for the workers to run."""
    if not any(entry[1] is nudge_relay for entry in connection.run_on_commit):
        transaction.on_commit(nudge_relay)


_NUDGE_BACKOFF_SECONDS = 10.0
_nudge_paused_until = 0.0


def nudge_relay() -> None:
    """Ask a worker to send now rather than at the next sweep (the on_commit callback). The
    message leaves from a thread of this process, so a request does not wait the half
    millisecond a Celery message costs to build and push; nudges asked for while one is being
    sent (or within _NUDGE_EVERY_SECONDS of it) become one more nudge after it, never none.
    Best effort: with the broker down the change has committed anyway and the periodic relay
    sends it later."""
    _nudger().set()


_nudge_wanted = threading.Event()
_nudger_started_in: int | None = None
_nudger_lock = threading.Lock()


def _nudger() -> threading.Event:
    """The process's nudging thread, started on first use (and again in a forked child, which
    inherits the flag but not the thread)."""
    global _nudger_started_in

    if _nudger_started_in != os.getpid():
        with _nudger_lock:
            if _nudger_started_in != os.getpid():
                threading.Thread(target=_nudge_forever, name="webhook-relay-nudger", daemon=True).start()
                _nudger_started_in = os.getpid()
    return _nudge_wanted


# At most one nudge per this many seconds from a process: under load, the commits of that
# moment share one relay task (each costs the workers a claim, and this process half a
# millisecond of Python), for at most this much added latency.
_NUDGE_EVERY_SECONDS = 0.02


def _nudge_forever() -> None:
    while True:
        _nudge_wanted.wait()
        _nudge_wanted.clear()
        _nudge_send()
        time.sleep(_NUDGE_EVERY_SECONDS)


def _nudge_send() -> None:
    """After a failure, nudges pause for a few seconds rather than each wait on a dead broker.
    The task is named, not imported: tasks sit above the services they wrap."""
    global _nudge_paused_until

    if time.monotonic() < _nudge_paused_until:
        return
    try:
        current_app.send_task(RELAY_TASK, retry=False)
    except Exception as exc:  # any broker failure; the delivery row is already safe in PostgreSQL
        _nudge_paused_until = time.monotonic() + _NUDGE_BACKOFF_SECONDS
        logger.warning("could not nudge the webhook relay (%s); the periodic sweep will send", exc)
