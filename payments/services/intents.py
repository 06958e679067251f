"""Payment intents: create, confirm, review, cancel.

Confirming runs the policy engine and places the hold in one transaction; the provider is
called after that commits (services/routing.py); settlement arrives later as a signed provider
event (services/provider_events.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from audit.history import create_with_history
from ledger.errors import CurrencyMismatch, PolicyDenied
from ledger.locks import lock_account_with_system, lock_tenant_accounts, locked_row, shard_pick
from ledger.models import Account, new_hold_id
from ledger.services.holds import hold_place_locked, holds_release_lapsed
from ledger.services.postings import with_lapsed_holds_retry
from ledger.services.system_accounts import system_accounts_refuse
from tenants.models import Tenant
from zentra.db.before_commit import before_commit
from zentra.errors import InvalidStateTransition, ValidationFailed

from ..models import IntentTransition, PaymentIntent, PolicyDecision
from .lifecycle import (
    ALLOWED_MOVES,
    IntentTrail,
    intent_event,
    intent_hold_release,
    intent_move,
    locked_intent,
)
from .policy import policy_evaluate
from .routing import payment_intent_route

# --- create ------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def payment_intent_create(*, tenant: Tenant, amount: int, currency: str, source_account_id: str,
                          destination_account_id: str, actor: Actor, rail: str = "",
                          metadata: dict[str, Any] | None = None) -> PaymentIntent:
    with acting_as(actor):
        if source_account_id == destination_account_id:
            raise ValidationFailed("source_account and destination_account must differ",
                                   errors=[{"field": "destination_account", "message": "Same as the source."}])
        # Read, not locked: creating an intent moves no money.
        accounts = lock_tenant_accounts(tenant_id=tenant.id, actor=actor, action="create payment intent",
                                        wanted=[(source_account_id, "source_account"),
                                                (destination_account_id, "destination_account")],
                                        lock=False)
        for field, account in (("source_account", accounts[source_account_id]),
                               ("destination_account", accounts[destination_account_id])):
            if account.currency != currency:
                raise CurrencyMismatch(f"The intent is in {currency}, {field} {account.id} in {account.currency}",
                                       errors=[{"field": field, "message": "Differs from the intent's currency."}])
            # A payment from or to a reserve, settlement or payout account moves its money by hand.
            system_accounts_refuse([account], actor=actor, action="create payment intent")
        intent = PaymentIntent(tenant=tenant, amount=amount, currency=currency, source_account_id=source_account_id,
                               destination_account_id=destination_account_id, rail=rail, metadata=metadata or {},
                               source_request_id=current_request_id() or "")
        create_with_history(intent, reason="created")  # the intent and its history row in one statement
        # Its own statement: the row-level security policy of transitions looks the intent up,
        # and a statement's CTEs do not see the rows their siblings insert.
        transition = IntentTransition.objects.create(intent=intent, from_status="", to_status=intent.status,
                                                     at=timezone.now(), actor=str(actor), reason="created")
        intent.trail = IntentTrail(transitions=[transition], attempts=[], decisions=[])  # type: ignore[attr-defined]
        intent_event(intent, "payment_intent.created", actor)
        before_commit(intent)
        return intent


# --- confirm -----------------------------------------------------------------------------

def payment_intent_confirm(*, tenant: Tenant, intent_id: str, actor: Actor) -> PaymentIntent:
    """Policy, then the hold, in one transaction; then the provider routes, after commit."""
    intent = with_lapsed_holds_retry(_confirm, tenant=tenant, intent_id=intent_id, actor=actor)
    if intent.status == PaymentIntent.PROCESSING:
        intent = payment_intent_route(intent_id=intent.id, actor=actor, intent=intent)
    return intent


def _record_decisions(intent: PaymentIntent, decisions: list[dict[str, Any]]) -> None:
    # Evidence connection: a denial rolls the confirmation back, the reasons stay.
    PolicyDecision.objects.bulk_create([
        PolicyDecision(tenant_id=intent.tenant_id, intent_id=intent.id, request_id=current_request_id() or "",
                       **decision) for decision in decisions])


@transaction.atomic(durable=True)
def _confirm(*, tenant: Tenant, intent_id: str, actor: Actor, lapsed_on: Sequence[str]) -> PaymentIntent:
    with acting_as(actor):
        intent = locked_intent(tenant=tenant, intent_id=intent_id, actor=actor, action="confirm")
        if intent.status != PaymentIntent.REQUIRES_CONFIRMATION:
            raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status}; only an intent that "
                                         "requires confirmation can be confirmed")
        # Source and reserve together, in key order: velocity is read under this lock. The hold
        # is named first: the shard of the reserve it credits follows from it.
        hold_id = new_hold_id()
        if lapsed_on:
            reserve = Account.objects.get(tenant=tenant, currency=intent.currency, account_type="reserve",
                                          is_system=True)
            locked = holds_release_lapsed(tenant=tenant, account_ids=lapsed_on, actor=actor,
                                          also_lock=[intent.source_account_id, reserve.id],
                                          whole=[intent.source_account_id], pick=shard_pick(hold_id))
            source = locked_row(locked, intent.source_account_id)
        else:
            source, _, locked = lock_account_with_system(
                tenant_id=tenant.id, account_id=intent.source_account_id, system_type="reserve", actor=actor,
                action="confirm payment intent", field="source_account", pick=shard_pick(hold_id))
        verdict = policy_evaluate(intent=intent, source=source)
        _record_decisions(intent, verdict.decisions)
        if verdict.outcome == "deny":
            raise PolicyDenied(f"Payment intent {intent.id} denied by policy: {verdict.reason}")
        hold = hold_place_locked(
            tenant=tenant, account=source, amount=intent.amount, actor=actor, reference=f"payment intent {intent.id}",
            expires_at=timezone.now() + timedelta(seconds=settings.ZENTRA_INTENT_HOLD_SECONDS), locked=locked,
            lapsed_released=bool(lapsed_on), hold_id=hold_id)
        intent.hold, intent.route_plan = hold, verdict.routes
        if verdict.outcome == "review":
            intent_move(intent, PaymentIntent.REQUIRES_REVIEW, actor=actor, reason=verdict.reason,
                        fields=("hold", "route_plan"))
        else:
            intent_move(intent, PaymentIntent.PROCESSING, actor=actor, reason="policy allowed",
                        fields=("hold", "route_plan"))
        return intent


# --- review ------------------------------------------------------------------------------

def payment_intent_approve(*, tenant: Tenant, intent_id: str, actor: Actor, reason: str) -> PaymentIntent:
    _review(tenant=tenant, intent_id=intent_id, actor=actor, reason=reason, approve=True)
    return payment_intent_route(intent_id=intent_id, actor=actor)


def payment_intent_decline(*, tenant: Tenant, intent_id: str, actor: Actor, reason: str) -> PaymentIntent:
    return _review(tenant=tenant, intent_id=intent_id, actor=actor, reason=reason, approve=False)


@transaction.atomic(durable=True)
def _review(*, tenant: Tenant, intent_id: str, actor: Actor, reason: str, approve: bool) -> PaymentIntent:
    if not reason.strip():
        raise ValidationFailed("A review decision needs a reason", errors=[{"field": "reason", "message": "Required."}])
    with acting_as(actor):
        intent = locked_intent(tenant=tenant, intent_id=intent_id, actor=actor, action="review")
        if intent.status != PaymentIntent.REQUIRES_REVIEW:
            raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status}, not in review")
        if approve:
            intent_move(intent, PaymentIntent.PROCESSING, actor=actor, reason=f"approved in review: {reason}")
        else:
            intent_hold_release(intent, actor, reason=f"declined in review: {reason}")
            intent.failure_reason = f"declined in review: {reason}"[:500]
            intent_move(intent, PaymentIntent.FAILED, actor=actor, reason=intent.failure_reason,
                        fields=("failure_reason",))
        return intent


# --- cancel ------------------------------------------------------------------------------

@transaction.atomic(durable=True)
def payment_intent_cancel(*, tenant: Tenant, intent_id: str, actor: Actor, reason: str = "") -> PaymentIntent:
    with acting_as(actor):
        intent = locked_intent(tenant=tenant, intent_id=intent_id, actor=actor, action="cancel")
        if PaymentIntent.CANCELED not in ALLOWED_MOVES.get(intent.status, set()):
            raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status}; it can no longer be "
                                         "canceled")
        intent_hold_release(intent, actor, reason=reason or "payment intent canceled")
        intent_move(intent, PaymentIntent.CANCELED, actor=actor, reason=reason or "canceled")
        return intent
