"""Inbound provider events: signed by the provider's secret, applied once.

The provider's event id is unique per provider, so a replay finds the event already stored and
changes nothing; settlement captures the intent's hold to the tenant's settlement account and
credits the merchant, each its own ledger transaction, in one database transaction.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from audit.services.evidence import access_denial_record
from ledger.locks import lock_tenant_hold_with_accounts, locked_row
from ledger.models import CREDIT, DEBIT, Hold
from ledger.selectors import system_account_id
from ledger.services.holds import hold_capture_locked
from ledger.services.postings import EntryInput, post_entries
from zentra.errors import InvalidStateTransition, NotFound, ValidationFailed

from ..adapters import verify_event
from ..errors import SignatureRejected
from ..models import PaymentIntent, Provider, ProviderEvent
from .lifecycle import intent_hold_release, intent_move, locked_intent
from .settlement.records import settlement_record_charge

EVENT_TYPES = ("payment.settled", "payment.declined")


@transaction.atomic(durable=True)
def provider_event_receive(*, provider_id: str, body: bytes, signature: str) -> tuple[ProviderEvent, bool]:
    """Apply a signed provider event once. Returns (event, applied_now); a replay of an event
    already applied returns (that event, False) and changes nothing."""
    provider = Provider.objects.select_related("tenant").filter(pk=provider_id).first()
    actor = Actor.system(f"provider:{provider_id}")
    if provider is None:
        # Unsigned by anyone we know: counted per address and reason, not a row per call.
        access_denial_record(actor=actor, action="provider event", target=provider_id, reason="unknown provider",
                             request_id=current_request_id(), unauthenticated=True)
        raise NotFound(f"No such provider: {provider_id}")
    problem = verify_event(provider.secret, body, signature or "")
    if problem:
        access_denial_record(actor=actor, tenant_id=provider.tenant_id, action="provider event", target=provider.id,
                             reason=problem, request_id=current_request_id(), unauthenticated=True)
        raise SignatureRejected(f"Provider event refused: {problem}")
    try:
        payload = json.loads(body)
        external_id, event_type, intent_id = payload["id"], payload["type"], payload["intent"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed("Provider event must be JSON with id, type and intent") from exc
    if event_type not in EVENT_TYPES:
        raise ValidationFailed(f"Unknown provider event type {event_type!r}")
    with acting_as(actor):
        event = _stored_once(provider, str(external_id)[:100], event_type, payload)
        if event is None:
            return ProviderEvent.objects.get(provider=provider, external_id=str(external_id)[:100]), False
        intent = locked_intent(tenant=provider.tenant, intent_id=str(intent_id), actor=actor, action="settle",
                               with_route=True)
        route = intent.route
        if intent.status != PaymentIntent.PROCESSING or route is None or route.provider_id != provider.id \
                or payload.get("reference") != intent.provider_reference:
            raise InvalidStateTransition(f"Payment intent {intent.id} is {intent.status} with reference "
                                         f"{intent.provider_reference or 'none'}; {event_type} does not apply")
        event.intent = intent
        if event_type == "payment.settled":
            _settle(intent, provider, actor, settled_at=event.received_at)
            event.outcome = "settled: hold captured to settlement, merchant credited"
        else:
            intent_hold_release(intent, actor, reason="declined by the provider")
            intent.failure_reason = "declined by the provider"
            intent_move(intent, PaymentIntent.FAILED, actor=actor, reason=intent.failure_reason,
                        fields=("failure_reason",))
            event.outcome = "declined: hold released"
        event.save(update_fields=["intent", "outcome"])
        return event, True


def _stored_once(provider: Provider, external_id: str, event_type: str, payload: dict) -> ProviderEvent | None:
    """The event, stored; None when the provider sent this id before (provider_event_once):
    one statement, where catching the unique violation would need a savepoint around it."""
    received_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ProviderEvent._meta.db_table} (provider_id, external_id, type, payload, intent_id, outcome, "
            "received_at) VALUES (%s, %s, %s, %s::jsonb, NULL, '', %s) "
            "ON CONFLICT (provider_id, external_id) DO NOTHING RETURNING id",
            [provider.id, external_id, event_type, json.dumps(payload), received_at])
        row = cursor.fetchone()
    if row is None:
        return None
    event = ProviderEvent(id=row[0], provider=provider, external_id=external_id, type=event_type, payload=payload,
                          outcome="", received_at=received_at)
    event._state.adding, event._state.db = False, connection.alias
    return event


def _settle(intent: PaymentIntent, provider: Provider, actor: Actor, *, settled_at: datetime) -> None:
    settlement_id = system_account_id(intent.tenant_id, intent.currency, "settlement")
    if settlement_id is None:
        raise InvalidStateTransition(f"Tenant {intent.tenant_id} has no settlement account in {intent.currency}")
    # The hold, then every account the two postings touch, locked in one statement, in order.
    hold, locked = lock_tenant_hold_with_accounts(
        tenant_id=intent.tenant_id, hold_id=str(intent.hold_id), actor=actor, action="settle payment intent",
        also=[(settlement_id, "settlement"), (intent.destination_account_id, "destination_account")])
    if hold.status != Hold.ACTIVE:
        raise InvalidStateTransition(f"Hold {hold.id} of {intent.id} is {hold.status}; nothing to settle")
    hold.tenant = intent.tenant
    settlement = locked_row(locked, settlement_id)  # the shard of it the hold's id picks
    hold_capture_locked(hold=hold, destination=settlement, actor=actor, reason=f"settled {intent.id}",
                        payment_intent_id=intent.id, locked=locked)
    txn = post_entries(tenant=intent.tenant, actor=actor, kind="settlement", payment_intent_id=intent.id,
                       locked=locked, shard_key=hold.id, description=f"Settlement of {intent.id} to the merchant",
                       entries=[EntryInput(settlement.id, DEBIT, intent.amount, row=True),
                                EntryInput(intent.destination_account_id, CREDIT, intent.amount)])
    # Matched to its intent as it arrives; the provider's settlement report confirms it later.
    settlement_record_charge(intent=intent, provider=provider, transaction_id=txn.id, settled_at=settled_at)
    intent_move(intent, PaymentIntent.SUCCEEDED, actor=actor, reason="settled by the provider")
