"""The public shapes of payment intents, payouts, provider event receipts and policy rules
(zentra/shapes.py)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from ledger.models import LedgerTransaction
from zentra.shapes import JSONObject, Timestamp, iso, iso_or_none

from .models import PaymentIntent, Payout, PolicyDecision, PolicyRule, ProviderEvent, SettlementReport

IntentStatus = Literal["requires_confirmation", "requires_review", "processing", "succeeded", "failed", "canceled"]


# One move of the intent's state machine (`from` is null for its creation). "from" is a Python
# keyword, so this shape is spelled functionally.
TransitionBody = TypedDict("TransitionBody", {
    "from": str | None, "to": str, "at": Timestamp, "actor": str, "reason": str})


class PolicyDecisionBody(TypedDict):
    rule: str | None
    kind: str
    outcome: Literal["allow", "deny", "review", "route"]
    reason: str
    inputs: dict[str, Any]
    at: Timestamp


class ProviderAttemptBody(TypedDict):
    route: str
    provider: str
    outcome: str
    reference: str | None
    latency_ms: int
    error: str | None
    at: Timestamp


class PaymentIntentBody(TypedDict):
    id: str
    object: Literal["payment_intent"]
    amount: int
    currency: str
    source_account: str
    destination_account: str
    rail: str | None
    status: IntentStatus
    hold: str | None
    route: str | None
    provider_reference: str | None
    failure_reason: str | None
    transitions: list[TransitionBody]
    policy_decisions: list[PolicyDecisionBody]
    provider_attempts: list[ProviderAttemptBody]
    metadata: JSONObject
    created_at: Timestamp


class PayoutBody(TypedDict):
    id: str
    object: Literal["payout"]
    account: str
    amount: int
    currency: str
    status: Literal["pending", "paid", "failed"]
    failure_reason: str | None
    provider_reference: str | None
    transactions: list[str]
    metadata: JSONObject
    created_at: Timestamp
    resolved_at: Timestamp | None


class ProviderEventReceiptBody(TypedDict):
    """What Zentra did with an inbound provider event (`duplicate`: already applied before)."""

    id: str
    object: Literal["provider_event"]
    type: str
    intent: str | None
    outcome: str
    status: Literal["applied", "duplicate"]


class PolicyRuleBody(TypedDict):
    id: str
    object: Literal["policy_rule"]
    kind: str
    position: int
    enabled: bool
    currency: str
    rail: str
    params: dict[str, Any]
    description: str


def payment_intent_body(intent: PaymentIntent) -> PaymentIntentBody:
    # What the services already hold of the intent's trail (loaded with its lock, or made by
    # them: payments.services.lifecycle.IntentTrail) is not read again.
    trail = getattr(intent, "trail", None)
    transitions = (trail.transitions if trail is not None and trail.transitions is not None
                   else list(intent.transitions.order_by("at", "id")))
    attempts = (trail.attempts if trail is not None and trail.attempts is not None
                else list(intent.provider_attempts.order_by("id")))
    decisions = (trail.decisions if trail is not None and trail.decisions is not None
                 else list(PolicyDecision.objects.filter(intent_id=intent.id).order_by("id")))
    return {
        "id": intent.id, "object": "payment_intent", "amount": intent.amount, "currency": intent.currency,
        "source_account": intent.source_account_id, "destination_account": intent.destination_account_id,
        "rail": intent.rail or None, "status": intent.status,  # type: ignore[typeddict-item]
        "hold": intent.hold_id, "route": intent.route_id,
        "provider_reference": intent.provider_reference or None, "failure_reason": intent.failure_reason or None,
        "transitions": [{"from": t.from_status or None, "to": t.to_status, "at": iso(t.at), "actor": t.actor,
                         "reason": t.reason} for t in transitions],
        "policy_decisions": [{"rule": d.rule_id or None, "kind": d.rule_kind,
                              "outcome": d.outcome,  # type: ignore[typeddict-item]
                              "reason": d.reason, "inputs": d.inputs, "at": iso(d.created_at)} for d in decisions],
        "provider_attempts": [{"route": a.route_id, "provider": a.provider_id, "outcome": a.outcome,
                               "reference": a.reference or None, "latency_ms": a.latency_ms,
                               "error": a.error or None, "at": iso(a.created_at)}
                              for a in attempts],
        "metadata": intent.metadata, "created_at": iso(intent.created_at),
    }


def payout_body(payout: Payout) -> PayoutBody:
    transactions = LedgerTransaction.objects.filter(payout_id=payout.id).order_by("created_at", "id")
    return {"id": payout.id, "object": "payout", "account": payout.account_id, "amount": payout.amount,
            "currency": payout.currency, "status": payout.status,  # type: ignore[typeddict-item]
            "failure_reason": payout.failure_reason or None, "provider_reference": payout.provider_reference or None,
            "transactions": list(transactions.values_list("id", flat=True)), "metadata": payout.metadata,
            "created_at": iso(payout.created_at), "resolved_at": iso_or_none(payout.resolved_at)}


def provider_event_receipt_body(event: ProviderEvent, *, applied: bool) -> ProviderEventReceiptBody:
    return {"id": event.external_id, "object": "provider_event", "type": event.type, "intent": event.intent_id,
            "outcome": event.outcome, "status": "applied" if applied else "duplicate"}


def policy_rule_body(rule: PolicyRule) -> PolicyRuleBody:
    return {"id": rule.id, "object": "policy_rule", "kind": rule.kind, "position": rule.position,
            "enabled": rule.enabled, "currency": rule.currency, "rail": rule.rail, "params": rule.params,
            "description": rule.description}


class SettlementReportBody(TypedDict):
    id: str
    object: Literal["settlement_report"]
    provider: str
    period_start: Timestamp
    period_end: Timestamp
    sha256: str
    source: Literal["upload", "fetched"]
    status: Literal["matching", "matched", "failed"]
    lines: int
    matched: int
    breaks: int
    fees_posted: int
    fee_transaction: str | None
    failure_reason: str | None
    created_at: Timestamp
    finished_at: Timestamp | None


def settlement_report_body(report: SettlementReport) -> SettlementReportBody:
    return {"id": report.id, "object": "settlement_report", "provider": report.provider_id,
            "period_start": iso(report.period_start), "period_end": iso(report.period_end), "sha256": report.sha256,
            "source": report.source, "status": report.status,  # type: ignore[typeddict-item]
            "lines": report.lines, "matched": report.matched, "breaks": report.breaks,
            "fees_posted": report.fees_posted, "fee_transaction": report.fee_transaction_id or None,
            "failure_reason": report.failure_reason or None, "created_at": iso(report.created_at),
            "finished_at": iso_or_none(report.finished_at)}
