"""Sending an event again: same event, same `webhook-id`, a new delivery with its own attempts."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from tenants.models import Tenant
from tenants.selectors import Scope, tenant_object

from .. import event_types
from ..models import Delivery, Event, WebhookEndpoint
from .endpoints import endpoint_require_enabled, locked_endpoint
from .outbox import nudge_relay_on_commit


def event_redeliver(*, tenant: Tenant, event_id: str, actor: Actor,
                    endpoint_id: str | None = None) -> list[Delivery]:
    """Queue the event again to one endpoint, or to every enabled endpoint subscribed to it."""
    with transaction.atomic(), acting_as(actor):
        scope = Scope.of_tenant(tenant.id, actor)
        event = tenant_object(Event, event_id, scope=scope, action="redeliver event", label="event")
        if endpoint_id is not None:
            targets = [endpoint_require_enabled(locked_endpoint(tenant=tenant, endpoint_id=endpoint_id, actor=actor,
                                                                action="redeliver event"))]
        else:
            targets = list(WebhookEndpoint.objects.filter(
                tenant_id=event.tenant_id, deleted_at__isnull=True, status=WebhookEndpoint.ENABLED,
                event_types__has_any_keys=event_types.subscription_patterns(event.type)))
        now = timezone.now()
        deliveries = Delivery.objects.bulk_create([
            Delivery(tenant_id=event.tenant_id, event=event, endpoint=target, next_attempt_at=now,
                     requested_by=str(actor)) for target in targets])
        if deliveries:
            nudge_relay_on_commit()
        return deliveries


def endpoint_redeliver_failed(*, tenant: Tenant, endpoint_id: str, since: datetime,
                              actor: Actor) -> list[Delivery]:
    """Queue again every event whose delivery to this endpoint failed since `since`."""
    with transaction.atomic(), acting_as(actor):
        endpoint = endpoint_require_enabled(locked_endpoint(tenant=tenant, endpoint_id=endpoint_id, actor=actor,
                                                            action="redeliver failed"))
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
            nudge_relay_on_commit()
        return deliveries
