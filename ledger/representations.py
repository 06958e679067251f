"""Plain-dict shapes of ledger objects, as the API shows them.

Built by hand rather than through DRF field machinery: a posting writes this payload into
its event inside the locked section, so it must cost microseconds. The API's output
serializers delegate here, so the event payload and the API body cannot drift apart.
"""

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def transaction_entry_payload(entry) -> dict:
    return {"id": entry.id, "account": entry.account_id, "direction": entry.direction, "amount": entry.amount,
            "currency": entry.currency, "balance_after": entry.balance_after, "sequence": entry.sequence}


def transaction_payload(txn, *, entries, reversed_by: str | None) -> dict:
    return {
        "id": txn.id, "object": "transaction", "status": "posted", "kind": txn.kind, "description": txn.description,
        "entries": [transaction_entry_payload(e) for e in sorted(entries, key=lambda e: e.id)],
        "reverses": txn.reverses_id, "reversed_by": reversed_by, "metadata": txn.metadata,
        "created_at": iso(txn.created_at), "effective_at": iso(txn.effective_at),
    }


def effective_hold_status(hold, now: datetime) -> str:
    """A hold past its expiry is expired the instant it passes, before the job catches up."""
    if hold.status == "active" and hold.expires_at <= now:
        return "expired"
    return hold.status


def hold_payload(hold, *, now: datetime | None = None) -> dict:
    from django.utils import timezone

    transactions = getattr(hold, "recent_transactions", None)
    if transactions is None:
        transactions = list(hold.transactions.all())
    transactions = sorted(transactions, key=lambda t: (t.created_at, t.id))
    created = next((t.id for t in transactions if t.kind == "hold"), None)
    captures = [t.id for t in transactions if t.kind == "capture"]
    release = next((t.id for t in reversed(transactions) if t.kind in ("release", "expiry")), None)
    return {
        "id": hold.id, "object": "hold", "account": hold.account_id, "amount": hold.amount,
        "currency": hold.currency, "captured_amount": hold.captured_amount,
        "released_amount": hold.released_amount, "status": effective_hold_status(hold, now or timezone.now()),
        "expires_at": iso(hold.expires_at), "reference": hold.reference, "metadata": hold.metadata,
        "source_request_id": hold.source_request_id,
        "transactions": {"created": created, "captures": captures, "release": release},
        "resolved_by": hold.resolved_by or None, "resolution_reason": hold.resolution_reason or None,
        "created_at": iso(hold.created_at), "resolved_at": iso(hold.resolved_at),
    }


def payment_intent_payload(intent) -> dict:
    from .models import PolicyDecision

    decisions = PolicyDecision.objects.filter(intent_id=intent.id).order_by("id")
    return {
        "id": intent.id, "object": "payment_intent", "amount": intent.amount, "currency": intent.currency,
        "source_account": intent.source_account_id, "destination_account": intent.destination_account_id,
        "rail": intent.rail or None, "status": intent.status, "hold": intent.hold_id, "route": intent.route_id,
        "provider_reference": intent.provider_reference or None, "failure_reason": intent.failure_reason or None,
        "transitions": [{"from": t.from_status or None, "to": t.to_status, "at": iso(t.at), "actor": t.actor,
                         "reason": t.reason} for t in intent.transitions.order_by("at", "id")],
        "policy_decisions": [{"rule": d.rule_id or None, "kind": d.rule_kind, "outcome": d.outcome,
                              "reason": d.reason, "inputs": d.inputs, "at": iso(d.created_at)} for d in decisions],
        "provider_attempts": [{"route": a.route_id, "provider": a.provider_id, "outcome": a.outcome,
                               "reference": a.reference or None, "latency_ms": a.latency_ms,
                               "error": a.error or None, "at": iso(a.created_at)}
                              for a in intent.provider_attempts.order_by("id")],
        "metadata": intent.metadata, "created_at": iso(intent.created_at),
    }


def payout_payload(payout) -> dict:
    return {"id": payout.id, "object": "payout", "account": payout.account_id, "amount": payout.amount,
            "currency": payout.currency, "status": payout.status, "failure_reason": payout.failure_reason or None,
            "transactions": [t.id for t in payout.transactions.order_by("created_at", "id")],
            "metadata": payout.metadata, "created_at": iso(payout.created_at), "resolved_at": iso(payout.resolved_at)}
