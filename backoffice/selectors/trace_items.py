"""The items of a trace: given the closure of related ids (trace.py), every row that names one of
them, one query per kind of row, as the API's and the admin's trace items."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

from django.db.models import Q, QuerySet

from audit.models import AccessDenial, Approval, RequestRecord
from ledger.currencies import format_minor
from ledger.models import Account, Hold, LedgerTransaction, ReconciliationBreak, logical_account_of
from ledger.selectors import holds_with_transaction_refs
from ledger.shapes import hold_body, transaction_body
from payments.models import IntentTransition, PaymentIntent, Payout, PolicyDecision, ProviderAttempt, SettlementRecord
from tenants.selectors import Scope, scoped
from webhooks.models import Delivery, DeliveryAttempt, Event
from zentra.shapes import Timestamp, iso

TraceKind = Literal["request", "transition", "policy_decision", "provider_attempt", "hold", "transaction", "event",
                    "delivery_attempt", "history", "access_denial", "approval", "reconciliation"]


def item_at(item: TraceItemBody) -> datetime:
    return datetime.fromisoformat(item["at"].replace("Z", "+00:00"))


class TraceItemBody(TypedDict):
    at: Timestamp
    kind: TraceKind
    id: str
    summary: str
    data: dict[str, Any]



@dataclass
class TraceIds:
    """The closure of a trace: the objects whose stories are told."""

    intents: set[str] = field(default_factory=set)
    holds: set[str] = field(default_factory=set)
    transactions: set[str] = field(default_factory=set)
    payouts: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    events: set[str] = field(default_factory=set)
    deliveries: set[str] = field(default_factory=set)
    requests: set[str] = field(default_factory=set)

    def objects(self) -> set[str]:
        return self.intents | self.holds | self.transactions | self.payouts | self.accounts



def _item(at: datetime, kind: TraceKind, object_id: str, summary: str, data: dict[str, Any]) -> TraceItemBody:
    return {"at": iso(at), "kind": kind, "id": object_id, "summary": summary, "data": data}


def trace_items(scope: Scope, ids: TraceIds) -> list[TraceItemBody]:
    items: list[TraceItemBody] = []
    objects = ids.objects()

    holds = list(holds_with_transaction_refs(scoped(Hold.objects.filter(pk__in=ids.holds), scope)))
    for hold in holds:
        ids.requests.add(hold.source_request_id)
        items.append(_item(hold.created_at, "hold", hold.id,
                           f"hold of {format_minor(hold.amount, hold.currency)} on {hold.account_id}, "
                           f"now {hold.status}", dict(hold_body(hold))))

    transactions = list(scoped(LedgerTransaction.objects.filter(pk__in=ids.transactions), scope)
                        .select_related("reversed_by").prefetch_related("entries"))
    names = dict(Account.objects.filter(pk__in={logical_account_of(e.account_id)[0] for t in transactions
                                                for e in t.entries.all()}).values_list("id", "name"))
    for txn in transactions:
        ids.requests.add(txn.source_request_id)
        body = transaction_body(txn)
        entries = [{**entry, "account_name": names.get(entry["account"], ""),
                    "amount_shown": format_minor(entry["amount"], entry["currency"]),
                    "balance_after_shown": format_minor(entry["balance_after"], entry["currency"])}
                   for entry in body["entries"]]
        moves = ", ".join(f"{e['direction']} {e['account_name'] or e['account']} {e['amount_shown']}"
                          for e in entries)
        items.append(_item(txn.created_at, "transaction", txn.id, f"{txn.kind}: {moves}",
                           {**body, "entries": entries, "actor": txn.actor}))

    intents = scoped(PaymentIntent.objects.filter(pk__in=ids.intents), scope)
    ids.requests.update(intents.values_list("source_request_id", flat=True))
    for transition in IntentTransition.objects.filter(intent_id__in=ids.intents).order_by("at", "id"):
        items.append(_item(transition.at, "transition", transition.intent_id,
                           f"{transition.from_status or 'created'} -> {transition.to_status}"
                           + (f": {transition.reason}" if transition.reason else ""),
                           {"intent": transition.intent_id, "from": transition.from_status or None,
                            "to": transition.to_status, "actor": transition.actor, "reason": transition.reason}))
    for decision in PolicyDecision.objects.filter(intent_id__in=ids.intents).order_by("id"):
        items.append(_item(decision.created_at, "policy_decision", decision.intent_id,
                           f"{decision.rule_kind}: {decision.outcome}, {decision.reason}",
                           {"intent": decision.intent_id, "rule": decision.rule_id or None, "kind": decision.rule_kind,
                            "outcome": decision.outcome, "reason": decision.reason, "inputs": decision.inputs}))
    for attempt in ProviderAttempt.objects.filter(intent_id__in=ids.intents).select_related("provider"):
        items.append(_item(attempt.created_at, "provider_attempt", attempt.intent_id,
                           f"{attempt.provider.name} via {attempt.route_id}: {attempt.outcome} "
                           f"({attempt.latency_ms} ms)" + (f", {attempt.error}" if attempt.error else ""),
                           {"intent": attempt.intent_id, "route": attempt.route_id, "provider": attempt.provider_id,
                            "provider_name": attempt.provider.name, "outcome": attempt.outcome,
                            "reference": attempt.reference or None, "latency_ms": attempt.latency_ms,
                            "error": attempt.error or None}))
    for payout in scoped(Payout.objects.filter(pk__in=ids.payouts), scope):
        ids.requests.add(payout.source_request_id)
    items.extend(_reconciliation_items(scope, ids, objects))

    events = list(scoped(Event.objects.filter(Q(pk__in=ids.events) | Q(resource_id__in=objects)), scope)
                  .order_by("id"))
    for event in events:
        ids.requests.add(event.request_id)
        items.append(_item(event.created_at, "event", event.id, f"{event.type} about {event.resource_id}",
                           {"type": event.type, "resource": event.resource_id, "actor": event.actor,
                            "request_id": event.request_id or None, "data": event.data}))
    deliveries = (Delivery.objects.filter(event_id__in=[e.id for e in events]).select_related("endpoint")
                  .prefetch_related("attempts").order_by("id"))
    for delivery in deliveries:
        items.extend(_delivery_items(delivery, delivery.attempts.all()))

    ids.requests.discard("")
    requests = scoped(RequestRecord.objects.filter(request_id__in=ids.requests), scope).order_by("created_at", "id")
    for record in requests:
        items.append(_item(record.created_at, "request", record.request_id,
                           f"{record.method} {record.path} {record.status} by {record.actor or 'anonymous'}",
                           {"request_id": record.request_id, "method": record.method, "path": record.path,
                            "status": record.status, "actor": record.actor, "idempotency_key": record.idempotency_key,
                            "idempotent_replay": record.idempotent_replay, "duration_ms": record.duration_ms}))

    items.extend(_history_items(scope, ids))
    tenant_filter = (Q() if scope.tenant_ids is None else
                     Q(tenant_id__in=scope.tenant_ids) | Q(target_tenant_id__in=scope.tenant_ids))
    denials = AccessDenial.objects.filter(Q(target__in=objects | ids.events) | Q(request_id__in=ids.requests))
    for denial in denials.filter(tenant_filter).order_by("id"):
        items.append(_item(denial.created_at, "access_denial", denial.target or denial.request_id,
                           f"refused {denial.action} to {denial.actor_label or denial.actor}: {denial.reason}",
                           {"actor": denial.actor, "actor_label": denial.actor_label, "role": denial.role,
                            "action": denial.action, "target": denial.target, "reason": denial.reason,
                            "request_id": denial.request_id or None}))
    items.sort(key=lambda item: (item_at(item), _KIND_ORDER[item["kind"]]))
    return items


def _reconciliation_items(scope: Scope, ids: TraceIds, objects: set[str]) -> list[TraceItemBody]:
    """How the provider's side agreed: each settlement matched as it arrived, the report that
    confirmed it, the breaks about its reference; and the approvals about these objects."""
    items: list[TraceItemBody] = []
    records = list(scoped(SettlementRecord.objects.filter(Q(payment_intent_id__in=ids.intents)
                                                          | Q(payout_id__in=ids.payouts)), scope)
                   .select_related("provider"))
    for record in records:
        confirmed = f"confirmed by report {record.report_id}" if record.report_id else "awaiting the provider's report"
        items.append(_item(record.settled_at, "reconciliation", record.payment_intent_id or record.payout_id or "",
                           f"{record.type} {record.provider_reference} of {format_minor(record.gross, record.currency)}"
                           f" settled by {record.provider.name}: {confirmed}",
                           {"type": record.type, "provider": record.provider_id,
                            "provider_reference": record.provider_reference, "gross": record.gross,
                            "currency": record.currency, "transaction": record.transaction_id or None,
                            "report": record.report_id}))
    references = {record.provider_reference for record in records}
    if references:
        for found in scoped(ReconciliationBreak.objects.filter(provider_reference__in=references), scope):
            items.append(_item(found.created_at, "reconciliation", found.id,
                               f"break {found.kind} ({found.status}): {found.detail}",
                               {"kind": found.kind, "status": found.status, "report": found.report_id or None,
                                "expected": found.expected, "actual": found.actual,
                                "resolution": found.resolution or None}))
    approvals = scoped(Approval.objects.filter(Q(target__in=objects) | Q(result__in=objects)), scope)
    for approval in approvals.order_by("id"):
        items.append(_item(approval.created_at, "approval", approval.id,
                           f"{approval.action} proposed by {approval.proposed_by_label or approval.proposed_by}"
                           + (f", {approval.status} by {approval.decided_by_label or approval.decided_by}"
                              if approval.decided_by else f", {approval.status}") + f": {approval.summary}",
                           {"action": approval.action, "status": approval.status,
                            "proposed_by": approval.proposed_by, "decided_by": approval.decided_by or None,
                            "result": approval.result or None}))
    return items


# Items at the same instant read in causal order: the request, then what it decided and moved.
_KIND_ORDER = {kind: n for n, kind in enumerate(
    ["request", "access_denial", "transition", "policy_decision", "hold", "transaction", "provider_attempt",
     "history", "event", "delivery_attempt", "approval", "reconciliation"])}


def _delivery_items(delivery: Delivery, attempts: Iterable[DeliveryAttempt]) -> list[TraceItemBody]:
    base = {"delivery": delivery.id, "event": delivery.event_id, "endpoint": delivery.endpoint_id,
            "url": delivery.endpoint.url, "delivery_status": delivery.status}
    rows = sorted(attempts, key=lambda a: a.number)
    if not rows:
        return [_item(delivery.created_at, "delivery_attempt", delivery.id,
                      f"queued for {delivery.endpoint.url}, first attempt due "
                      f"{delivery.next_attempt_at:%Y-%m-%d %H:%M:%S}" if delivery.next_attempt_at else
                      f"queued for {delivery.endpoint.url}", {**base, "number": 0})]
    return [_item(attempt.attempted_at, "delivery_attempt", delivery.id,
                  f"attempt {attempt.number} to {delivery.endpoint.url}: "
                  + (f"HTTP {attempt.status_code}" if attempt.status_code else "no answer")
                  + f" in {attempt.duration_ms} ms"
                  + (f", next at {attempt.next_attempt_at:%Y-%m-%d %H:%M:%S}" if attempt.next_attempt_at else ""),
                  {**base, "number": attempt.number, "status_code": attempt.status_code,
                   "duration_ms": attempt.duration_ms, "response_body": attempt.response_body[:300],
                   "error": attempt.error or None, "next_attempt_at": iso(attempt.next_attempt_at)
                   if attempt.next_attempt_at else None}) for attempt in rows]


def _history_items(scope: Scope, ids: TraceIds) -> list[TraceItemBody]:
    """History rows of the traced objects, each with what it changed against the row before."""
    items: list[TraceItemBody] = []
    tracked: list[tuple[type[Any], set[str]]] = [(PaymentIntent, ids.intents), (Hold, ids.holds),
                                                 (Payout, ids.payouts), (Account, ids.accounts)]
    for model, wanted in tracked:
        if not wanted:
            continue
        rows: QuerySet[Any] = model.history.filter(id__in=wanted).order_by("id", "history_date", "history_id")
        if scope.tenant_ids is not None:
            rows = rows.filter(tenant_id__in=scope.tenant_ids)
        previous: dict[str, Any] = {}
        columns = [f.attname for f in rows.model._meta.fields if not f.name.startswith("history_")]
        for row in rows:
            values = {name: getattr(row, name) for name in columns}
            before = previous.get(row.id)
            changes = ({name: [_plain(before[name]), _plain(value)] for name, value in values.items()
                        if before[name] != value} if before else {})
            previous[row.id] = values
            verb = {"+": "created", "~": "changed", "-": "deleted"}.get(row.history_type, row.history_type)
            summary = f"{model._meta.verbose_name} {verb}" + (f": {', '.join(sorted(changes))}" if changes else "")
            items.append(_item(row.history_date, "history", row.id,
                               summary + (f" ({row.history_change_reason})" if row.history_change_reason else ""),
                               {"model": model._meta.label_lower, "type": row.history_type, "changes": changes,
                                "actor": row.history_actor, "reason": row.history_change_reason}))
    return items


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return value
