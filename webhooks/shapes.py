"""The public shapes of events, deliveries and webhook endpoints (see zentra/shapes.py).

An event's body here is exactly what a webhook receiver gets, and what `GET /v1/events/{id}`
shows without its deliveries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypedDict

from zentra.shapes import Timestamp, iso, iso_or_none

from .models import Delivery, DeliveryAttempt, Event, WebhookEndpoint


class EventData(TypedDict):
    object: dict[str, Any]


class EventBody(TypedDict):
    """An event; also the body of every webhook delivery (`webhook-id` is its id)."""

    id: str
    object: Literal["event"]
    type: str
    created_at: Timestamp
    data: EventData


class AttemptBody(TypedDict):
    number: int
    at: Timestamp
    # The headers sent (webhook-id, webhook-timestamp, webhook-signature...): signatures are
    # not secret, and a receiver's developer needs them to debug a verification.
    request_headers: dict[str, str]
    status_code: int
    duration_ms: int
    response_body: str
    error: str
    next_attempt_at: Timestamp | None


class DeliveryBody(TypedDict):
    id: str
    object: Literal["delivery"]
    event: str
    endpoint: str
    status: Literal["pending", "succeeded", "failed"]
    attempts_count: int
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    completed_at: Timestamp | None
    attempts: list[AttemptBody]


class EventWithDeliveriesBody(EventBody):
    deliveries: list[DeliveryBody]


class WebhookEndpointBody(TypedDict):
    id: str
    object: Literal["webhook_endpoint"]
    url: str
    event_types: list[str]
    description: str
    status: Literal["enabled", "disabled", "deleted"]
    disabled_reason: str
    created_at: Timestamp
    last_success_at: Timestamp | None
    failing_since: Timestamp | None
    previous_secret_expires_at: Timestamp | None


class WebhookEndpointWithSecretBody(WebhookEndpointBody):
    secret: str


def event_body(event: Event) -> EventBody:
    return {"id": event.id, "object": "event", "type": event.type, "created_at": iso(event.created_at),
            "data": event.data}


def attempt_body(attempt: DeliveryAttempt) -> AttemptBody:
    return {"number": attempt.number, "at": iso(attempt.attempted_at), "request_headers": attempt.request_headers,
            "status_code": attempt.status_code,
            "duration_ms": attempt.duration_ms, "response_body": attempt.response_body, "error": attempt.error,
            "next_attempt_at": iso_or_none(attempt.next_attempt_at)}


def delivery_body(delivery: Delivery, attempts: Iterable[DeliveryAttempt] | None = None) -> DeliveryBody:
    """`attempts`: the delivery's attempts when the caller has them at hand (a prefetch)."""
    rows = list(delivery.attempts.all()) if attempts is None else list(attempts)
    return {"id": delivery.id, "object": "delivery", "event": delivery.event_id, "endpoint": delivery.endpoint_id,
            "status": delivery.status, "attempts_count": delivery.attempts_count,  # type: ignore[typeddict-item]
            "next_attempt_at": iso_or_none(delivery.next_attempt_at), "created_at": iso(delivery.created_at),
            "completed_at": iso_or_none(delivery.completed_at),
            "attempts": [attempt_body(a) for a in sorted(rows, key=lambda a: a.number)]}


def event_with_deliveries_body(event: Event, deliveries: Iterable[Delivery]) -> EventWithDeliveriesBody:
    return {**event_body(event), "deliveries": [delivery_body(d) for d in deliveries]}


def webhook_endpoint_body(endpoint: WebhookEndpoint) -> WebhookEndpointBody:
    status = "deleted" if endpoint.deleted_at is not None else endpoint.status
    return {"id": endpoint.id, "object": "webhook_endpoint", "url": endpoint.url,
            "event_types": list(endpoint.event_types), "description": endpoint.description,
            "status": status,  # type: ignore[typeddict-item]
            "disabled_reason": endpoint.disabled_reason, "created_at": iso(endpoint.created_at),
            "last_success_at": iso_or_none(endpoint.last_success_at),
            "failing_since": iso_or_none(endpoint.failing_since),
            "previous_secret_expires_at": iso_or_none(endpoint.previous_secret_expires_at)}


def webhook_endpoint_with_secret_body(endpoint: WebhookEndpoint, secret: str) -> WebhookEndpointWithSecretBody:
    return {**webhook_endpoint_body(endpoint), "secret": secret}
