"""Reads of events, deliveries and endpoints, in the shapes the API and the admin need."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import Tenant

from .models import Delivery, Event, WebhookEndpoint


def events_of(tenant: Tenant, *, type_filter: str | None = None, resource_id: str | None = None) -> QuerySet[Event]:
    """`type_filter`: an exact type (hold.created) or a family (hold.*)."""
    events = Event.objects.filter(tenant=tenant)
    if type_filter:
        if type_filter.endswith(".*"):
            events = events.filter(type__startswith=type_filter[:-1])
        else:
            events = events.filter(type=type_filter)
    if resource_id:
        events = events.filter(resource_id=resource_id)
    return events


def deliveries_of(event: Event) -> QuerySet[Delivery]:
    """An event's deliveries with their attempts, oldest first."""
    return event.deliveries.order_by("id").prefetch_related("attempts")


def endpoints_of(tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    """The tenant's endpoints that are not deleted."""
    return WebhookEndpoint.objects.filter(tenant=tenant, deleted_at__isnull=True)
