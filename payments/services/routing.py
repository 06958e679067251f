"""Carrying a processing payment to a provider: the planned routes in order, each try recorded,
with a circuit breaker per route. No database transaction stays open across a provider call:
after each call, its attempt is one short transaction (an accepting one together with the
intent's acceptance), and a failure of the intent another."""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.history import save_with_history

from ..adapters import ProviderTimeout, ProviderUnavailable, adapter_for
from ..models import PaymentIntent, ProviderAttempt, ProviderRoute
from .lifecycle import intent_hold_release, intent_move


def payment_intent_route(*, intent_id: str, actor: Actor, intent: PaymentIntent | None = None) -> PaymentIntent:
    """Try the planned routes in order until one takes the payment. A route failing
    `failure_threshold` times in a row is down for its cooldown (its circuit is open).
    `intent`: the intent as its confirmation just committed it, which spares reading it again."""
    if intent is None or intent.id != intent_id:
        intent = PaymentIntent.objects.select_related("tenant").get(pk=intent_id)
    if intent.status != PaymentIntent.PROCESSING or intent.provider_reference:
        return intent
    for route_id in intent.route_plan:
        route = ProviderRoute.objects.select_related("provider").filter(pk=route_id, enabled=True).first()
        if route is None:
            continue
        if route.down_until and route.down_until > timezone.now():
            _attempt_record(intent, route, actor, outcome="route_down", latency_ms=0,
                            error=f"circuit open until {route.down_until:%H:%M:%S} UTC")
            continue
        started = time.monotonic()
        try:
            result = adapter_for(route.provider).submit(intent=intent, route=route)
        except (ProviderUnavailable, ProviderTimeout) as exc:
            _attempt_record(intent, route, actor, outcome="timeout" if isinstance(exc, ProviderTimeout) else "error",
                            latency_ms=int((time.monotonic() - started) * 1000), error=str(exc))
            continue
        latency = int((time.monotonic() - started) * 1000)
        if result.accepted:
            return _accepted(intent=intent, route=route, reference=result.reference, latency_ms=latency, actor=actor)
        _attempt_record(intent, route, actor, outcome="declined", latency_ms=latency, error=result.reason)
        return _fail(intent_id=intent.id, actor=actor, reason=result.reason)
    return _fail(intent_id=intent.id, actor=actor, reason="no provider route accepted the payment")


@transaction.atomic
def _attempt_record(intent: PaymentIntent, route: ProviderRoute, actor: Actor, *, outcome: str, latency_ms: int,
                    error: str = "", reference: str = "") -> None:
    _attempt_write(intent, route, actor, outcome=outcome, latency_ms=latency_ms, error=error, reference=reference)


def _attempt_write(intent: PaymentIntent, route: ProviderRoute, actor: Actor, *, outcome: str, latency_ms: int,
                   error: str = "", reference: str = "") -> None:
    """The attempt's row, and its route's circuit, inside the caller's transaction."""
    ProviderAttempt.objects.create(intent=intent, route=route, provider=route.provider, outcome=outcome,
                                   latency_ms=latency_ms, error=error[:500], reference=reference,
                                   request={"amount": intent.amount, "currency": intent.currency, "rail": route.rail})
    if outcome == "route_down":
        return
    routes = ProviderRoute.objects.select_for_update().filter(pk=route.pk)
    if outcome not in ("error", "timeout"):
        # An answer closes the circuit: a route already closed (the usual case) has nothing to
        # change, and is neither locked nor given a history row.
        routes = routes.exclude(consecutive_failures=0, down_until=None)
    locked = routes.first()
    if locked is None:
        return
    if outcome in ("error", "timeout"):
        locked.consecutive_failures += 1
        if locked.consecutive_failures >= locked.failure_threshold:
            locked.down_until = timezone.now() + timedelta(seconds=locked.cooldown_seconds)
    else:
        locked.consecutive_failures, locked.down_until = 0, None
    with acting_as(actor):  # the route's history names who made the payment that tried it
        save_with_history(locked, ["consecutive_failures", "down_until"], reason=f"attempt: {outcome} on {intent.id}")


@transaction.atomic(durable=True)
def _accepted(*, intent: PaymentIntent, route: ProviderRoute, reference: str, latency_ms: int,
              actor: Actor) -> PaymentIntent:
    """The accepting attempt and the intent's acceptance: one transaction, after the call."""
    _attempt_write(intent, route, actor, outcome="accepted", latency_ms=latency_ms, reference=reference)
    with acting_as(actor):
        intent = PaymentIntent.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=intent.id)
        if intent.status == PaymentIntent.PROCESSING and not intent.provider_reference:
            intent.route, intent.provider_reference = route, reference
            save_with_history(intent, ["route", "provider_reference"], reason=f"accepted by {route.provider.name}")
        return intent


@transaction.atomic(durable=True)
def _fail(*, intent_id: str, actor: Actor, reason: str) -> PaymentIntent:
    with acting_as(actor):
        intent = PaymentIntent.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=intent_id)
        if intent.status != PaymentIntent.PROCESSING:
            return intent
        intent_hold_release(intent, actor, reason=reason)
        intent.failure_reason = reason[:500]
        intent_move(intent, PaymentIntent.FAILED, actor=actor, reason=reason, fields=("failure_reason",))
        return intent
