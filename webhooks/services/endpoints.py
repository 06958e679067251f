"""Webhook endpoints: where a tenant's events go, signed with a secret shown once."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from tenants.models import Tenant
from tenants.selectors import Scope, tenant_object
from zentra.errors import ValidationFailed

from .. import event_types
from ..addresses import AddressRefused, check_url
from ..errors import EndpointDisabled
from ..models import Delivery, Event, WebhookEndpoint
from ..shapes import webhook_endpoint_body
from ..signing import new_secret
from .outbox import event_emit, nudge_relay_on_commit


def endpoint_values_check(url: str, patterns: list[str]) -> None:
    """Where a webhook may go and what it may subscribe to (the API and the admin both ask)."""
    try:
        check_url(url)
    except AddressRefused as exc:
        raise ValidationFailed(f"url: {exc}", errors=[{"field": "url", "message": str(exc)}]) from exc
    unknown = [p for p in patterns if not event_types.pattern_is_known(p)]
    if unknown:
        raise ValidationFailed(f"event_types: unknown {', '.join(unknown)}", errors=[
            {"field": "event_types", "message": f"Unknown event type or family: {', '.join(unknown)}."}])


def locked_endpoint(*, tenant: Tenant, endpoint_id: str, actor: Actor, action: str) -> WebhookEndpoint:
    """The tenant's endpoint (not deleted), row-locked for the caller's transaction."""
    return tenant_object(WebhookEndpoint.objects.filter(deleted_at__isnull=True), endpoint_id,
                         scope=Scope.of_tenant(tenant.id, actor), action=action, label="webhook endpoint",
                         lock=True)


def endpoint_create(*, tenant: Tenant, url: str, actor: Actor, event_types_filter: list[str] | None = None,
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its signing secret, which is shown this once."""
    patterns = list(dict.fromkeys(event_types_filter or ["*"]))
    endpoint_values_check(url, patterns)
    secret = new_secret()
    with transaction.atomic(), acting_as(actor):
        endpoint = WebhookEndpoint(tenant=tenant, url=url, event_types=patterns, description=description,
                                   secret=secret)
        endpoint._change_reason = "created"  # type: ignore[attr-defined]
        endpoint.save()
        return endpoint, secret


def endpoint_rotate_secret(*, tenant: Tenant, endpoint_id: str, actor: Actor,
                           overlap_seconds: int | None = None) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one keeps signing beside it for the overlap (24 hours by default)."""
    overlap = min(overlap_seconds or settings.ZENTRA_WEBHOOK_ROTATION_OVERLAP_SECONDS, 7 * 24 * 3600)
    secret = new_secret()
    with transaction.atomic(), acting_as(actor):
        endpoint = locked_endpoint(tenant=tenant, endpoint_id=endpoint_id, actor=actor, action="rotate secret")
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + timedelta(seconds=overlap)
        endpoint.secret = secret
        endpoint._change_reason = "secret rotated"  # type: ignore[attr-defined]
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
        return endpoint, secret


def endpoint_set_status(endpoint: WebhookEndpoint, *, enabled: bool, actor: Actor, reason: str) -> WebhookEndpoint:
    """On a row the caller has locked. Disabling emits webhook_endpoint.disabled (sent to every
    other subscribed endpoint, never to the one disabled)."""
    target = WebhookEndpoint.ENABLED if enabled else WebhookEndpoint.DISABLED
    if endpoint.status == target:
        return endpoint
    endpoint.status = target
    endpoint.disabled_reason = "" if enabled else reason[:500]
    if enabled:
        endpoint.failing_since = None
    endpoint._change_reason = reason or ("enabled" if enabled else "disabled")  # type: ignore[attr-defined]
    endpoint.save(update_fields=["status", "disabled_reason", "failing_since"])
    if not enabled:
        event_emit(tenant=endpoint.tenant, type="webhook_endpoint.disabled", resource_id=endpoint.id,
                   data_object=dict(webhook_endpoint_body(endpoint)), actor=actor,
                   exclude_endpoint_ids=frozenset({endpoint.id}))
    return endpoint


def endpoint_disable(*, tenant: Tenant, endpoint_id: str, actor: Actor, reason: str = "") -> WebhookEndpoint:
    """Nothing more goes to the endpoint until it is enabled again (its deliveries wait)."""
    with transaction.atomic(), acting_as(actor):
        endpoint = locked_endpoint(tenant=tenant, endpoint_id=endpoint_id, actor=actor, action="disable endpoint")
        return endpoint_set_status(endpoint, enabled=False, actor=actor, reason=reason or f"disabled by {actor}")


def endpoint_enable(*, tenant: Tenant, endpoint_id: str, actor: Actor, reason: str = "") -> WebhookEndpoint:
    with transaction.atomic(), acting_as(actor):
        endpoint = locked_endpoint(tenant=tenant, endpoint_id=endpoint_id, actor=actor, action="enable endpoint")
        return endpoint_set_status(endpoint, enabled=True, actor=actor, reason=reason or "re-enabled")


def endpoint_delete(*, tenant: Tenant, endpoint_id: str, actor: Actor) -> WebhookEndpoint:
    """Deleted endpoints stop receiving and leave the lists; their delivery history stays."""
    with transaction.atomic(), acting_as(actor):
        endpoint = locked_endpoint(tenant=tenant, endpoint_id=endpoint_id, actor=actor, action="delete endpoint")
        endpoint.deleted_at = timezone.now()
        endpoint.status = WebhookEndpoint.DISABLED
        endpoint.disabled_reason = "deleted"
        endpoint._change_reason = "deleted"  # type: ignore[attr-defined]
        endpoint.save(update_fields=["deleted_at", "status", "disabled_reason"])
        return endpoint


def endpoint_require_enabled(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Sending to a disabled endpoint would only queue what never leaves: refuse it."""
    if endpoint.status != WebhookEndpoint.ENABLED:
        why = endpoint.disabled_reason or "no reason given"
        raise EndpointDisabled(f"Webhook endpoint {endpoint.id} is disabled ({why}); enable it first "
                               f"(POST /v1/webhook_endpoints/{endpoint.id}/enable)")
    return endpoint


def endpoint_send_test(*, tenant: Tenant, endpoint_id: str, actor: Actor) -> Delivery:
    """A `webhook_endpoint.test` event delivered to this endpoint only, whatever its filter, signed
    like any other: how an operator checks a receiver end to end."""
    with transaction.atomic(), acting_as(actor):
        endpoint = endpoint_require_enabled(locked_endpoint(tenant=tenant, endpoint_id=endpoint_id, actor=actor,
                                                            action="send a test event"))
        now = timezone.now()
        event = Event.objects.create(tenant=tenant, type="webhook_endpoint.test", resource_id=endpoint.id,
                                     data={"object": dict(webhook_endpoint_body(endpoint))}, actor=str(actor),
                                     request_id=current_request_id() or "", created_at=now)
        delivery = Delivery.objects.create(tenant=tenant, event=event, endpoint=endpoint, next_attempt_at=now,
                                           requested_by=str(actor))
        nudge_relay_on_commit()
        return delivery
