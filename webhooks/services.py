"""Events (the outbox) and webhook endpoints.

An event and one delivery per subscribed endpoint are written inside the transaction of the
change itself: they exist if and only if the change committed. Sending happens later, in
webhooks/delivery.py, nudged right after commit and swept by a periodic relay.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from zentra.api.idempotency import current_claim_id
from zentra.api.models import IdempotencyKey
from zentra.errors import NotFound, ValidationFailed

from . import event_types
from .addresses import AddressRefused, check_url
from .models import Delivery, Event, WebhookEndpoint
from .signing import new_secret

logger = logging.getLogger("zentra.webhooks")


def event_emit(*, tenant, type: str, resource_id: str, data_object: dict, actor: Actor,
               exclude_endpoint_ids: frozenset[str] = frozenset()) -> Event:
    """Record that `type` happened to the resource, with a delivery for every enabled endpoint
    subscribed to it. Must run inside the transaction of the change itself, so that a
    rollback takes the event and its deliveries with it."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it records")
    event = Event(tenant=tenant, type=type, resource_id=resource_id, data={"object": data_object},
                  actor=str(actor), request_id=current_request_id() or "", created_at=timezone.now())
    # One round trip for the event and its deliveries: every posting emits an event, so this
    # is on the hot path. Subscriptions match in SQL (a type, its family "hold.*", or "*").
    claim_id = current_claim_id()
    # Marks the API request's Idempotency-Key as spent in this same transaction (see
    # zentra/api/idempotency.py); a change without a request (a job, the admin) has no claim.
    claim_sql = (f"claim AS (UPDATE {IdempotencyKey._meta.db_table} SET effect_committed = true "
                 f"WHERE id = %s AND NOT effect_committed), " if claim_id is not None else "")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH {claim_sql}new_event AS (
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
            ([claim_id] if claim_id is not None else [])
            + [event.id, tenant.id, type, resource_id, json.dumps(event.data), event.actor, event.request_id,
             event.created_at, tenant.id, event.created_at, event.created_at, tenant.id,
             event_types.subscription_patterns(type),
             sorted(exclude_endpoint_ids)])
        if cursor.fetchall():
            transaction.on_commit(nudge_relay)
    event._state.adding = False
    event._state.db = "default"
    return event


_NUDGE_BACKOFF_SECONDS = 10.0
_nudge_paused_until = 0.0


def nudge_relay() -> None:
    """Ask a worker to send now rather than at the next sweep. Best effort: with the broker
    down the posting has committed anyway and the periodic relay sends it later. After a
    failure, nudges pause for a few seconds so requests do not each wait on a dead broker."""
    global _nudge_paused_until
    from .tasks import relay

    if time.monotonic() < _nudge_paused_until:
        return
    try:
        relay.apply_async(retry=False)
    except Exception as exc:  # any broker failure; the delivery row is already safe in PostgreSQL
        _nudge_paused_until = time.monotonic() + _NUDGE_BACKOFF_SECONDS
        logger.warning("could not nudge the webhook relay (%s); the periodic sweep will send", exc)


# --- endpoints ---------------------------------------------------------------------------

def _validated(url: str, patterns: list[str]) -> None:
    try:
        check_url(url)
    except AddressRefused as exc:
        raise ValidationFailed(f"url: {exc}", errors=[{"field": "url", "message": str(exc)}]) from exc
    unknown = [p for p in patterns if not event_types.pattern_is_known(p)]
    if unknown:
        raise ValidationFailed(f"event_types: unknown {', '.join(unknown)}", errors=[
            {"field": "event_types", "message": f"Unknown event type or family: {', '.join(unknown)}."}])


def endpoint_create(*, tenant, url: str, actor: Actor, event_types_filter: list[str] | None = None,
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its signing secret, which is shown this once."""
    patterns = list(dict.fromkeys(event_types_filter or ["*"]))
    _validated(url, patterns)
    secret = new_secret()
    with transaction.atomic(), acting_as(actor):
        endpoint = WebhookEndpoint.objects.create(tenant=tenant, url=url, event_types=patterns,
                                                  description=description, secret=secret)
        return endpoint, secret


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor,
                           overlap_seconds: int | None = None) -> tuple[WebhookEndpoint, str]:
    overlap = min(overlap_seconds or settings.ZENTRA_WEBHOOK_ROTATION_OVERLAP_SECONDS, 7 * 24 * 3600)
    secret = new_secret()
    with transaction.atomic(), acting_as(actor):
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + timedelta(seconds=overlap)
        locked.secret = secret
        locked._change_reason = "secret rotated"
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
        return locked, secret


def _endpoint_set_status(*, endpoint: WebhookEndpoint, enabled: bool, actor: Actor, reason: str) -> WebhookEndpoint:
    with transaction.atomic(), acting_as(actor):
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        target = WebhookEndpoint.ENABLED if enabled else WebhookEndpoint.DISABLED
        if locked.status == target:
            return locked
        locked.status = target
        locked.disabled_reason = "" if enabled else reason[:500]
        if enabled:
            locked.failing_since = None
        locked._change_reason = reason or ("enabled" if enabled else "disabled")
        locked.save(update_fields=["status", "disabled_reason", "failing_since"])
        if not enabled:
            from .api.serializers import endpoint_payload

            event_emit(tenant=locked.tenant, type="webhook_endpoint.disabled", resource_id=locked.id,
                       data_object=endpoint_payload(locked), actor=actor, exclude_endpoint_ids=frozenset({locked.id}))
        return locked


def endpoint_disable(*, endpoint: WebhookEndpoint, actor: Actor, reason: str) -> WebhookEndpoint:
    return _endpoint_set_status(endpoint=endpoint, enabled=False, actor=actor, reason=reason)


def endpoint_enable(*, endpoint: WebhookEndpoint, actor: Actor, reason: str = "") -> WebhookEndpoint:
    return _endpoint_set_status(endpoint=endpoint, enabled=True, actor=actor, reason=reason or "re-enabled")


def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    """Deleted endpoints stop receiving and leave the lists; their delivery history stays."""
    with transaction.atomic(), acting_as(actor):
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.deleted_at = locked.deleted_at or timezone.now()
        locked.status = WebhookEndpoint.DISABLED
        locked.disabled_reason = "deleted"
        locked._change_reason = "deleted"
        locked.save(update_fields=["deleted_at", "status", "disabled_reason"])
        return locked


# --- replay ------------------------------------------------------------------------------

def event_redeliver(*, event: Event, actor: Actor, endpoint: WebhookEndpoint | None = None) -> list[Delivery]:
    """Queue the same event again (same webhook-id) to one endpoint or every subscribed one."""
    with transaction.atomic(), acting_as(actor):
        if endpoint is not None:
            if endpoint.tenant_id != event.tenant_id or endpoint.deleted_at is not None:
                raise NotFound(f"No such webhook endpoint: {endpoint.id}")
            targets = [endpoint]
        else:
            targets = list(WebhookEndpoint.objects.filter(
                tenant_id=event.tenant_id, deleted_at__isnull=True, status=WebhookEndpoint.ENABLED,
                event_types__has_any_keys=event_types.subscription_patterns(event.type)))
        now = timezone.now()
        deliveries = Delivery.objects.bulk_create([
            Delivery(tenant_id=event.tenant_id, event=event, endpoint=target, next_attempt_at=now,
                     requested_by=str(actor)) for target in targets])
        if deliveries:
            transaction.on_commit(nudge_relay)
        return deliveries


def endpoint_redeliver_failed(*, endpoint: WebhookEndpoint, since: datetime, actor: Actor) -> list[Delivery]:
    """Queue again every event whose delivery to this endpoint failed since `since`."""
    with transaction.atomic(), acting_as(actor):
        # Failed since T means its last attempt ended after T, whenever it was first queued;
        # events already sent since, or queued again and still pending, are not queued twice.
        settled_or_queued = Delivery.objects.filter(endpoint=endpoint, status__in=[Delivery.PENDING,
                                                                                   Delivery.SUCCEEDED])
        failed = (Delivery.objects.filter(endpoint=endpoint, status=Delivery.FAILED, completed_at__gte=since)
                  .exclude(event_id__in=settled_or_queued.values("event_id"))
                  .order_by("event_id", "-completed_at").distinct("event_id"))
        now = timezone.now()
        deliveries = Delivery.objects.bulk_create([
            Delivery(tenant_id=endpoint.tenant_id, event_id=d.event_id, endpoint=endpoint, next_attempt_at=now,
                     redelivery_of=d, requested_by=str(actor)) for d in failed])
        if deliveries:
            transaction.on_commit(nudge_relay)
        return deliveries
