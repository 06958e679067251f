"""The payment intent state machine: the one place an intent changes state.

requires_confirmation -> processing -> succeeded | failed | canceled, plus requires_review.
Every move checks it is allowed and records {from, to, at, actor, reason}, an event and a
history row, inside the caller's transaction (which holds the intent's row lock).
"""

from __future__ import annotations

from django.utils import timezone

from audit.actors import Actor
from audit.history import save_with_history
from ledger.locks import lock_holds
from ledger.models import Hold
from ledger.services.holds import hold_release_locked
from tenants.models import Tenant
from tenants.selectors import Scope, tenant_object
from webhooks.services.outbox import event_emit
from zentra.errors import InvalidStateTransition

from ..models import IntentTransition, PaymentIntent
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
    transition = IntentTransition.objects.create(intent=intent, from_status=intent.status, to_status=to,
                                                 at=timezone.now(), actor=str(actor), reason=reason[:500])
    known = getattr(intent, "known_trail", None)
    if known is not None:
        known[0].append(transition)
    intent.status = to
    save_with_history(intent, ["status", *fields], reason=reason or to)  # the row and its history, one statement
    intent_event(intent, f"payment_intent.{to}", actor)


def locked_intent(*, tenant: Tenant, intent_id: str, actor: Actor, action: str,
                  with_route: bool = False) -> PaymentIntent:
    """The tenant's payment intent, row-locked for the caller's transaction (`with_route`: its
    provider route read in the same statement, not locked)."""
    intents = PaymentIntent.objects.select_related("route") if with_route else PaymentIntent.objects.all()
    intent = tenant_object(intents, intent_id, scope=Scope.of_tenant(tenant.id, actor),
                           action=f"{action} payment intent", label="payment intent", lock=True)
    intent.tenant = tenant
    return intent


def intent_hold_release(intent: PaymentIntent, actor: Actor, *, reason: str) -> None:
    """Give back the funds the intent reserved, if its hold is still active."""
    if intent.hold_id is None:
        return
    (hold,) = lock_holds([intent.hold_id])
    if hold.status == Hold.ACTIVE:
        hold_release_locked(hold=hold, actor=actor, reason=reason)
