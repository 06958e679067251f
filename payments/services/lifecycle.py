"""The payment intent state machine: the one place an intent changes state.

requires_confirmation -> processing -> succeeded | failed | canceled, plus requires_review.
Every move checks it is allowed and records {from, to, at, actor, reason}, an event and a
history row, inside the caller's transaction (which holds the intent's row lock).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef
from django.db.models.functions import JSONObject
from django.utils import timezone

from audit.actors import Actor
from audit.history import Alongside, save_with_history
from ledger.locks import lock_holds
from ledger.models import Hold
from ledger.services.holds import hold_release_locked
from tenants.models import Tenant
from tenants.selectors import Scope, tenant_object
from webhooks.services.outbox import event_emit
from zentra.errors import InvalidStateTransition

from ..models import IntentTransition, PaymentIntent, ProviderAttempt
from ..shapes import payment_intent_body

ALLOWED_MOVES = {
    PaymentIntent.REQUIRES_CONFIRMATION: {PaymentIntent.PROCESSING, PaymentIntent.REQUIRES_REVIEW,
                                          PaymentIntent.CANCELED},
    PaymentIntent.REQUIRES_REVIEW: {PaymentIntent.PROCESSING, PaymentIntent.FAILED, PaymentIntent.CANCELED},
    PaymentIntent.PROCESSING: {PaymentIntent.SUCCEEDED, PaymentIntent.FAILED},
}


def intent_event(intent: PaymentIntent, type: str, actor: Actor) -> None:
    event_emit(tenant=intent.tenant, type=type, resource_id=intent.id, data_object=dict(payment_intent_body(intent)),
               actor=actor)


def intent_move(intent: PaymentIntent, to: str, *, actor: Actor, reason: str = "",
                fields: tuple[str, ...] = ()) -> None:
    """Move a locked intent to `to`, with its transition, history row and event."""
    if to not in ALLOWED_MOVES.get(intent.status, set()):
        raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status}; it cannot become {to}")
    transition = IntentTransition(intent_id=intent.id, from_status=intent.status, to_status=to, at=timezone.now(),
                                  actor=str(actor), reason=reason[:500])
    trail = getattr(intent, "trail", None)
    if trail is not None and trail.transitions is not None:
        trail.transitions.append(transition)
    intent.status = to
    # The transition, the intent and its history row: one statement.
    save_with_history(intent, ["status", *fields], reason=reason or to, alongside=transition_insert(transition))
    intent_event(intent, f"payment_intent.{to}", actor)


@dataclass
class IntentTrail:
    """The part of an intent's trail a service already holds (None: not held, read when its
    public shape is built). Carried as `intent.trail`, kept current by the moves."""

    transitions: list[IntentTransition] | None = None
    attempts: list[ProviderAttempt] | None = None
    decisions: list[Any] | None = None  # on the evidence connection: never loaded with the lock


def _as_json(*columns: str) -> JSONObject:
    return JSONObject(**{column: column for column in columns})


# The intent's transitions and provider attempts, read in the statement that locks it.
_TRAIL = {
    "trail_transitions": ArraySubquery(IntentTransition.objects.filter(intent_id=OuterRef("pk")).order_by("at", "id")
                                       .values(row=_as_json("from_status", "to_status", "at", "actor", "reason"))),
    "trail_attempts": ArraySubquery(ProviderAttempt.objects.filter(intent_id=OuterRef("pk")).order_by("id")
                                    .values(row=_as_json("route_id", "provider_id", "outcome", "reference",
                                                         "latency_ms", "error", "created_at"))),
}


def _trail_of(intent: PaymentIntent) -> IntentTrail:
    def rows(name: str) -> list[dict]:
        return [json.loads(row) if isinstance(row, str) else row for row in getattr(intent, name)]

    return IntentTrail(
        transitions=[IntentTransition(intent_id=intent.id, from_status=row["from_status"], to_status=row["to_status"],
                                      at=datetime.fromisoformat(row["at"]), actor=row["actor"], reason=row["reason"])
                     for row in rows("trail_transitions")],
        attempts=[ProviderAttempt(intent_id=intent.id, route_id=row["route_id"], provider_id=row["provider_id"],
                                  outcome=row["outcome"], reference=row["reference"], latency_ms=row["latency_ms"],
                                  error=row["error"], created_at=datetime.fromisoformat(row["created_at"]))
                  for row in rows("trail_attempts")])


def transition_insert(transition: IntentTransition) -> Alongside:
    """The transition's INSERT, to travel with the intent's own write (audit.history)."""
    return (f"INSERT INTO {IntentTransition._meta.db_table} (intent_id, from_status, to_status, at, actor, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [transition.intent_id, transition.from_status, transition.to_status, transition.at, transition.actor,
             transition.reason])


def locked_intent(*, tenant: Tenant, intent_id: str, actor: Actor, action: str,
                  with_route: bool = False) -> PaymentIntent:
    """The tenant's payment intent, row-locked for the caller's transaction, with its trail
    (`intent.trail`) read in the same statement (`with_route`: its provider route too, not
    locked)."""
    intents = PaymentIntent.objects.annotate(**_TRAIL)
    if with_route:
        intents = intents.select_related("route")
    intent = tenant_object(intents, intent_id, scope=Scope.of_tenant(tenant.id, actor),
                           action=f"{action} payment intent", label="payment intent", lock=True)
    intent.tenant = tenant
    intent.trail = _trail_of(intent)  # type: ignore[attr-defined]
    return intent


def intent_hold_release(intent: PaymentIntent, actor: Actor, *, reason: str) -> None:
    """Give back the funds the intent reserved, if its hold is still active."""
    if intent.hold_id is None:
        return
    (hold,) = lock_holds([intent.hold_id])
    if hold.status == Hold.ACTIVE:
        hold_release_locked(hold=hold, actor=actor, reason=reason)
