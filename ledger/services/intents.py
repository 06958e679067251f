"""Payment intents: requires_confirmation -> processing -> succeeded | failed | canceled, plus
requires_review. Every move is an explicit service call that checks it is allowed and records
{from, to, at, actor, reason}, an event and a history row.

Confirming runs the policy engine and places the hold in one transaction; the provider is
called after that commits (no transaction stays open across a provider call); settlement
arrives later as a signed provider event, deduplicated by the provider's event id.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from audit.services import access_denial_record
from webhooks.services import event_emit
from zentra.errors import InvalidStateTransition, NotFound, ValidationFailed

from ..errors import CurrencyMismatch, PolicyDenied
from ..locks import lock_accounts, lock_holds
from ..models import (Account, Hold, IntentTransition, PaymentIntent, PolicyDecision, Provider, ProviderAttempt,
                      ProviderEvent, ProviderRoute)
from ..policy import policy_evaluate
from ..providers import ProviderTimeout, ProviderUnavailable, adapter_for, verify_event
from .lookups import tenant_account
from .holds import capture_hold_in_transaction, place_hold_in_transaction, release_hold_in_transaction
from .postings import CREDIT, DEBIT, EntryInput, post_entries, release_lapsed_holds_first, with_lapsed_holds_retry

ALLOWED_MOVES = {
    PaymentIntent.REQUIRES_CONFIRMATION: {PaymentIntent.PROCESSING, PaymentIntent.REQUIRES_REVIEW,
                                          PaymentIntent.CANCELED},
    PaymentIntent.REQUIRES_REVIEW: {PaymentIntent.PROCESSING, PaymentIntent.FAILED, PaymentIntent.CANCELED},
    PaymentIntent.PROCESSING: {PaymentIntent.SUCCEEDED, PaymentIntent.FAILED},
}


def _event(intent: PaymentIntent, type: str, actor: Actor) -> None:
    from ..representations import payment_intent_payload

    event_emit(tenant=intent.tenant, type=type, resource_id=intent.id, data_object=payment_intent_payload(intent),
               actor=actor)


def _move(intent: PaymentIntent, to: str, *, actor: Actor, reason: str = "", fields: tuple[str, ...] = ()) -> None:
    """The one place an intent changes state; the caller holds the intent row lock."""
    if to not in ALLOWED_MOVES.get(intent.status, set()):
        raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status}; it cannot become {to}")
    IntentTransition.objects.create(intent=intent, from_status=intent.status, to_status=to, at=timezone.now(),
                                    actor=str(actor), reason=reason[:500])
    intent.status = to
    intent._change_reason = reason or to
    intent.save(update_fields=["status", *fields])
    _event(intent, f"payment_intent.{to}", actor)


def _locked_intent(tenant, intent_id: str, actor: Actor, *, action: str) -> PaymentIntent:
    intent = (PaymentIntent.objects.select_for_update(of=("self",)).select_related("tenant")
              .filter(pk=intent_id).first())
    if intent is None or intent.tenant_id != tenant.id:
        if intent is not None:
            access_denial_record(actor=actor, tenant_id=tenant.id, action=f"{action} payment intent",
                                 target=intent_id, target_tenant_id=intent.tenant_id,
                                 reason="payment intent belongs to another tenant", request_id=current_request_id())
        raise NotFound(f"No such payment intent: {intent_id}")
    return intent


# --- create ------------------------------------------------------------------------------

@transaction.atomic(durable=True)
def payment_intent_create(*, tenant, amount: int, currency: str, source_account_id: str,
                          destination_account_id: str, actor: Actor, rail: str = "",
                          metadata: dict | None = None) -> PaymentIntent:
    with acting_as(actor):
        source = tenant_account(tenant, source_account_id, actor, field="source_account")
        destination = tenant_account(tenant, destination_account_id, actor, field="destination_account")
        if source.id == destination.id:
            raise ValidationFailed("source_account and destination_account must differ",
                                   errors=[{"field": "destination_account", "message": "Same as the source."}])
        for field, account in (("source_account", source), ("destination_account", destination)):
            if account.currency != currency:
                raise CurrencyMismatch(f"The intent is in {currency}, {field} {account.id} in {account.currency}",
                                       errors=[{"field": field, "message": "Differs from the intent's currency."}])
            if account.is_system:
                raise ValidationFailed(f"{field} {account.id} is a system account",
                                       errors=[{"field": field, "message": "Not a system account."}])
        intent = PaymentIntent.objects.create(tenant=tenant, amount=amount, currency=currency, source_account=source,
                                              destination_account=destination, rail=rail, metadata=metadata or {},
                                              source_request_id=current_request_id() or "")
        IntentTransition.objects.create(intent=intent, from_status="", to_status=intent.status, at=timezone.now(),
                                        actor=str(actor), reason="created")
        _event(intent, "payment_intent.created", actor)
        return intent


# --- confirm -----------------------------------------------------------------------------

def payment_intent_confirm(*, tenant, intent_id: str, actor: Actor) -> PaymentIntent:
    """Policy, then the hold, in one transaction; then the provider routes, after commit."""
    intent = with_lapsed_holds_retry(_confirm, tenant=tenant, intent_id=intent_id, actor=actor)
    if intent.status == PaymentIntent.PROCESSING:
        intent = payment_intent_route(intent_id=intent.id, actor=actor)
    return intent


def _record_decisions(intent: PaymentIntent, decisions: list[dict]) -> None:
    # Evidence connection: a denial rolls the confirmation back, the reasons stay.
    PolicyDecision.objects.bulk_create([
        PolicyDecision(tenant_id=intent.tenant_id, intent_id=intent.id, request_id=current_request_id() or "",
                       **decision) for decision in decisions])


@transaction.atomic(durable=True)
def _confirm(*, tenant, intent_id: str, actor: Actor, lapsed_on) -> PaymentIntent:
    with acting_as(actor):
        intent = _locked_intent(tenant, intent_id, actor, action="confirm")
        if intent.status != PaymentIntent.REQUIRES_CONFIRMATION:
            raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status}; only an intent that "
                                         "requires confirmation can be confirmed")
        reserve = Account.objects.get(tenant=tenant, currency=intent.currency, account_type="reserve",
                                      is_system=True)
        release_lapsed_holds_first(lapsed_on, lock_too=[intent.source_account_id, reserve.id], actor=actor)
        # Source and reserve together, in pk order: velocity is read under this lock.
        locked = {a.id: a for a in lock_accounts([intent.source_account_id, reserve.id])}
        source = locked[intent.source_account_id]
        verdict = policy_evaluate(intent=intent, source=source)
        _record_decisions(intent, verdict.decisions)
        if verdict.outcome == "deny":
            raise PolicyDenied(f"Payment intent {intent.id} denied by policy: {verdict.reason}")
        hold = place_hold_in_transaction(
            tenant=tenant, account=source, amount=intent.amount, actor=actor, reference=f"payment intent {intent.id}",
            expires_at=timezone.now() + timedelta(seconds=settings.ZENTRA_INTENT_HOLD_SECONDS),
            lapsed_released=bool(lapsed_on))
        intent.hold, intent.route_plan = hold, verdict.routes
        if verdict.outcome == "review":
            _move(intent, PaymentIntent.REQUIRES_REVIEW, actor=actor, reason=verdict.reason,
                  fields=("hold", "route_plan"))
        else:
            _move(intent, PaymentIntent.PROCESSING, actor=actor, reason="policy allowed",
                  fields=("hold", "route_plan"))
        return intent


# --- review ------------------------------------------------------------------------------

def payment_intent_approve(*, tenant, intent_id: str, actor: Actor, reason: str) -> PaymentIntent:
    _review(tenant=tenant, intent_id=intent_id, actor=actor, reason=reason, approve=True)
    return payment_intent_route(intent_id=intent_id, actor=actor)


def payment_intent_decline(*, tenant, intent_id: str, actor: Actor, reason: str) -> PaymentIntent:
    return _review(tenant=tenant, intent_id=intent_id, actor=actor, reason=reason, approve=False)


@transaction.atomic(durable=True)
def _review(*, tenant, intent_id: str, actor: Actor, reason: str, approve: bool) -> PaymentIntent:
    if not reason.strip():
        raise ValidationFailed("A review decision needs a reason", errors=[{"field": "reason", "message": "Required."}])
    with acting_as(actor):
        intent = _locked_intent(tenant, intent_id, actor, action="review")
        if intent.status != PaymentIntent.REQUIRES_REVIEW:
            raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status}, not in review")
        if approve:
            _move(intent, PaymentIntent.PROCESSING, actor=actor, reason=f"approved in review: {reason}")
        else:
            _release_intent_hold(intent, actor, reason=f"declined in review: {reason}")
            intent.failure_reason = f"declined in review: {reason}"[:500]
            _move(intent, PaymentIntent.FAILED, actor=actor, reason=intent.failure_reason, fields=("failure_reason",))
        return intent


def _release_intent_hold(intent: PaymentIntent, actor: Actor, *, reason: str) -> None:
    if intent.hold_id is None:
        return
    (hold,) = lock_holds([intent.hold_id])
    if hold.status == Hold.ACTIVE:
        release_hold_in_transaction(hold=hold, actor=actor, reason=reason)


# --- cancel ------------------------------------------------------------------------------

@transaction.atomic(durable=True)
def payment_intent_cancel(*, tenant, intent_id: str, actor: Actor, reason: str = "") -> PaymentIntent:
    with acting_as(actor):
        intent = _locked_intent(tenant, intent_id, actor, action="cancel")
        if PaymentIntent.CANCELED not in ALLOWED_MOVES.get(intent.status, set()):
            raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status}; it can no longer be "
                                         "canceled")
        _release_intent_hold(intent, actor, reason=reason or "payment intent canceled")
        _move(intent, PaymentIntent.CANCELED, actor=actor, reason=reason or "canceled")
        return intent


# --- provider routes ---------------------------------------------------------------------

def payment_intent_route(*, intent_id: str, actor: Actor) -> PaymentIntent:
    """Try the planned routes in order until one takes the payment. Each try is recorded; a
    route failing `failure_threshold` times in a row is down for its cooldown."""
    intent = PaymentIntent.objects.select_related("tenant").get(pk=intent_id)
    if intent.status != PaymentIntent.PROCESSING or intent.provider_reference:
        return intent
    for route_id in intent.route_plan:
        route = ProviderRoute.objects.select_related("provider").filter(pk=route_id, enabled=True).first()
        if route is None:
            continue
        if route.down_until and route.down_until > timezone.now():
            _attempt_record(intent, route, outcome="route_down", latency_ms=0,
                            error=f"circuit open until {route.down_until:%H:%M:%S} UTC")
            continue
        started = time.monotonic()
        try:
            result = adapter_for(route.provider).submit(intent=intent, route=route)
        except (ProviderUnavailable, ProviderTimeout) as exc:
            _attempt_record(intent, route, outcome="timeout" if isinstance(exc, ProviderTimeout) else "error",
                            latency_ms=int((time.monotonic() - started) * 1000), error=str(exc))
            continue
        latency = int((time.monotonic() - started) * 1000)
        if result.accepted:
            _attempt_record(intent, route, outcome="accepted", latency_ms=latency, reference=result.reference)
            return _accepted(intent_id=intent.id, route=route, reference=result.reference, actor=actor)
        _attempt_record(intent, route, outcome="declined", latency_ms=latency, error=result.reason)
        return _fail(intent_id=intent.id, actor=actor, reason=result.reason)
    return _fail(intent_id=intent.id, actor=actor, reason="no provider route accepted the payment")


@transaction.atomic
def _attempt_record(intent: PaymentIntent, route: ProviderRoute, *, outcome: str, latency_ms: int, error: str = "",
                    reference: str = "") -> None:
    ProviderAttempt.objects.create(intent=intent, route=route, provider=route.provider, outcome=outcome,
                                   latency_ms=latency_ms, error=error[:500], reference=reference,
                                   request={"amount": intent.amount, "currency": intent.currency, "rail": route.rail})
    if outcome == "route_down":
        return
    locked = ProviderRoute.objects.select_for_update().get(pk=route.pk)
    if outcome in ("error", "timeout"):
        locked.consecutive_failures += 1
        if locked.consecutive_failures >= locked.failure_threshold:
            locked.down_until = timezone.now() + timedelta(seconds=locked.cooldown_seconds)
    else:
        locked.consecutive_failures, locked.down_until = 0, None
    locked.save(update_fields=["consecutive_failures", "down_until"])


@transaction.atomic(durable=True)
def _accepted(*, intent_id: str, route: ProviderRoute, reference: str, actor: Actor) -> PaymentIntent:
    with acting_as(actor):
        intent = PaymentIntent.objects.select_for_update().select_related("tenant").get(pk=intent_id)
        if intent.status == PaymentIntent.PROCESSING and not intent.provider_reference:
            intent.route, intent.provider_reference = route, reference
            intent._change_reason = f"accepted by {route.provider.name}"
            intent.save(update_fields=["route", "provider_reference"])
        return intent


@transaction.atomic(durable=True)
def _fail(*, intent_id: str, actor: Actor, reason: str) -> PaymentIntent:
    with acting_as(actor):
        intent = PaymentIntent.objects.select_for_update().select_related("tenant").get(pk=intent_id)
        if intent.status != PaymentIntent.PROCESSING:
            return intent
        _release_intent_hold(intent, actor, reason=reason)
        intent.failure_reason = reason[:500]
        _move(intent, PaymentIntent.FAILED, actor=actor, reason=reason, fields=("failure_reason",))
        return intent


# --- provider events ---------------------------------------------------------------------

class SignatureRejected(ValidationFailed):
    status = 401
    code = "signature_invalid"
    title = "Signature invalid"


@transaction.atomic(durable=True)
def provider_event_receive(*, provider_id: str, body: bytes, signature: str) -> tuple[ProviderEvent, bool]:
    """Apply a signed provider event once. Returns (event, applied_now); a replay of an event
    already applied returns (that event, False) and changes nothing."""
    provider = Provider.objects.select_related("tenant").filter(pk=provider_id).first()
    actor = Actor.system(f"provider:{provider_id}")
    if provider is None:
        access_denial_record(actor=actor, action="provider event", target=provider_id, reason="unknown provider",
                             request_id=current_request_id())
        raise NotFound(f"No such provider: {provider_id}")
    problem = verify_event(provider.secret, body, signature or "")
    if problem:
        access_denial_record(actor=actor, tenant_id=provider.tenant_id, action="provider event", target=provider.id,
                             reason=problem, request_id=current_request_id())
        raise SignatureRejected(f"Provider event refused: {problem}")
    try:
        payload = json.loads(body)
        external_id, event_type, intent_id = payload["id"], payload["type"], payload["intent"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed("Provider event must be JSON with id, type and intent") from exc
    if event_type not in ("payment.settled", "payment.declined"):
        raise ValidationFailed(f"Unknown provider event type {event_type!r}")
    with acting_as(actor):
        try:
            with transaction.atomic():
                event = ProviderEvent.objects.create(provider=provider, external_id=str(external_id)[:100],
                                                     type=event_type, payload=payload)
        except IntegrityError:
            return ProviderEvent.objects.get(provider=provider, external_id=str(external_id)[:100]), False
        intent = _locked_intent(provider.tenant, str(intent_id), actor, action="settle")
        if intent.status != PaymentIntent.PROCESSING or intent.route_id is None \
                or intent.route.provider_id != provider.id or payload.get("reference") != intent.provider_reference:
            raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status} with reference "
                                         f"{intent.provider_reference or 'none'}; {event_type} does not apply")
        event.intent = intent
        if event_type == "payment.settled":
            _settle(intent, actor)
            event.outcome = "settled: hold captured to settlement, merchant credited"
        else:
            _release_intent_hold(intent, actor, reason="declined by the provider")
            intent.failure_reason = "declined by the provider"
            _move(intent, PaymentIntent.FAILED, actor=actor, reason=intent.failure_reason, fields=("failure_reason",))
            event.outcome = "declined: hold released"
        event.save(update_fields=["intent", "outcome"])
        return event, True


def _settle(intent: PaymentIntent, actor: Actor) -> None:
    settlement = Account.objects.get(tenant=intent.tenant, currency=intent.currency, account_type="settlement",
                                     is_system=True)
    (hold,) = lock_holds([intent.hold_id])
    if hold.status != Hold.ACTIVE:
        raise InvalidStateTransition(f"Hold {hold.id} of {intent.id} is {hold.status}; nothing to settle")
    capture_hold_in_transaction(hold=hold, destination=settlement, actor=actor, reason=f"settled {intent.id}",
                                payment_intent=intent)
    post_entries(tenant=intent.tenant, actor=actor, kind="settlement", payment_intent=intent,
                 description=f"Settlement of {intent.id} to the merchant",
                 entries=[EntryInput(settlement.id, DEBIT, intent.amount),
                          EntryInput(intent.destination_account_id, CREDIT, intent.amount)])
    _move(intent, PaymentIntent.SUCCEEDED, actor=actor, reason="settled by the provider")


def sandbox_settle_due(*, limit: int = 200) -> int:
    """The sandbox providers' side: once an accepted payment is `settle_delay_seconds` old,
    the provider sends its signed settlement event, through the same path as a real one."""
    from ..providers import sandbox_event_body, sign_event

    settled = 0
    due = (PaymentIntent.objects.filter(status=PaymentIntent.PROCESSING, route__provider__kind="sandbox")
           .exclude(provider_reference="").select_related("route__provider").order_by("id")[:limit])
    now = timezone.now()
    for intent in due:
        provider = intent.route.provider
        accepted = intent.provider_attempts.filter(outcome="accepted").order_by("-id").first()
        if accepted is None or accepted.created_at > now - timedelta(seconds=provider.settle_delay_seconds):
            continue
        body = sandbox_event_body(event_type="payment.settled", intent=intent)
        try:
            provider_event_receive(provider_id=provider.id, body=body, signature=sign_event(provider.secret, body))
            settled += 1
        except InvalidStateTransition:
            continue  # resolved meanwhile (canceled by review, settled by a replay): nothing to do
    return settled
