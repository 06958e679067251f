"""The trace of any id: the whole story of an object, and of everything it caused or was caused
by, oldest first. The API (`GET /v1/trace/{id}`) and the admin's trace page show the same items.

The story is gathered in a fixed number of queries, one per kind of row, whatever the number of
items: first the closure of related ids (an intent, its hold, their ledger transactions, the
payouts that later moved the money), then every row that names one of them (events,
deliveries and their attempts, transitions, policy decisions, provider attempts, request
records, history rows, access denials). Everything is read within the caller's tenants; an id
outside them is a 404 with an AccessDenial, like everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

from django.db.models import Q, QuerySet

from audit.models import AccessDenial, Approval, RequestRecord
from ledger.currencies import format_minor
from ledger.models import Account, Hold, LedgerEntry, LedgerTransaction, ReconciliationBreak
from ledger.selectors import holds_with_transaction_refs
from ledger.shapes import hold_body, transaction_body
from payments.models import (
    IntentTransition,
    PaymentIntent,
    Payout,
    PolicyDecision,
    ProviderAttempt,
    SettlementRecord,
)
from tenants.selectors import Scope, object_not_found, scoped
from webhooks.models import Delivery, DeliveryAttempt, Event
from zentra.errors import NotFound
from zentra.shapes import Timestamp, iso

TraceKind = Literal["request", "transition", "policy_decision", "provider_attempt", "hold", "transaction", "event",
                    "delivery_attempt", "history", "access_denial", "approval", "reconciliation"]

# The prefixes a trace starts from, and what they name.
ROOTS = {"req": "request", "pi": "payment intent", "hold": "hold", "txn": "transaction", "acct": "account",
         "po": "payout", "evt": "event", "del": "delivery"}
# An account's story is its most recent activity, not all of it.
ACCOUNT_WINDOW = 50


class TraceItemBody(TypedDict):
    at: Timestamp
    kind: TraceKind
    id: str
    summary: str
    data: dict[str, Any]


class TraceBody(TypedDict):
    """The story of `root`, oldest first."""

    object: Literal["trace"]
    root: str
    items: list[TraceItemBody]


@dataclass
class _Ids:
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


def root_kind(object_id: str) -> str | None:
    prefix = object_id.split("_", 1)[0]
    return prefix if prefix in ROOTS and "_" in object_id else None


def trace_of(scope: Scope, root: str, *, action: str = "trace", period: Period | None = None) -> TraceBody:
    """The trace of `root` within the scope's tenants; NotFound (with evidence) otherwise.

    With a `period` [from, to) (an evidence export's), only what happened within it is told, and
    an account's story is every entry of the period instead of its most recent ones."""
    kind = root_kind(root)
    if kind is None:
        raise NotFound(f"No such object to trace: {root} (give a req_, pi_, hold_, txn_, acct_, po_, evt_ or del_ id)")
    ids = _closure(scope, kind, root, action=action, period=period)
    items = _items(scope, ids)
    if period is not None:
        items = [item for item in items if period.contains(_at(item))]
    return {"object": "trace", "root": root, "items": items}


@dataclass(frozen=True)
class Period:
    """[since, until): a missing end is open."""

    since: datetime | None
    until: datetime | None

    def contains(self, at: datetime) -> bool:
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)

    def q(self, field: str = "created_at") -> Q:
        condition = Q()
        if self.since is not None:
            condition &= Q(**{f"{field}__gte": self.since})
        if self.until is not None:
            condition &= Q(**{f"{field}__lt": self.until})
        return condition


def _at(item: TraceItemBody) -> datetime:
    return datetime.fromisoformat(item["at"].replace("Z", "+00:00"))


# --- the closure -----------------------------------------------------------------------------------------

def _one(scope: Scope, model: type[Any], object_id: str, *, action: str, label: str) -> Any:
    found = scoped(model.objects.filter(pk=object_id), scope).first()
    if found is None:
        raise object_not_found(model, object_id, scope=scope, action=action, label=label)
    return found


def _closure(scope: Scope, kind: str, root: str, *, action: str, period: Period | None = None) -> _Ids:
    ids = _Ids()
    if kind == "req":
        records = scoped(RequestRecord.objects.filter(request_id=root), scope)
        if not records.exists():
            owner = RequestRecord.objects.filter(request_id=root).values_list("tenant_id", flat=True).first()
            if owner:
                raise object_not_found(RequestRecord, root, scope=scope, action=action, label="request")
            raise NotFound(f"No such request: {root}")
        ids.requests.add(root)
        # What the request made: every event it committed names it, as do the objects it created.
        for resource in scoped(Event.objects.filter(request_id=root), scope).values_list("resource_id", flat=True):
            _add_resource(ids, resource)
        for model, target in ((PaymentIntent, ids.intents), (Hold, ids.holds), (Payout, ids.payouts)):
            target.update(scoped(model.objects.filter(source_request_id=root), scope).values_list("id", flat=True))
        ids.transactions.update(scoped(LedgerTransaction.objects.filter(source_request_id=root), scope)
                                .values_list("id", flat=True))
    elif kind == "evt":
        event = _one(scope, Event, root, action=action, label="event")
        ids.events.add(event.id)
        _add_resource(ids, event.resource_id)
    elif kind == "del":
        delivery = _one(scope, Delivery, root, action=action, label="delivery")
        ids.deliveries.add(delivery.id)
        ids.events.add(delivery.event_id)
        event_resource = Event.objects.filter(pk=delivery.event_id).values_list("resource_id", flat=True).first()
        if event_resource:
            _add_resource(ids, event_resource)
    elif kind == "acct":
        account = _one(scope, Account, root, action=action, label="account")
        ids.accounts.add(account.id)
        if period is not None:
            # A period's story is all of it: every posting on the account, every hold, payment
            # and payout of the account that began within it.
            window = period.q()
            ids.transactions.update(LedgerEntry.objects.filter(window, account=account)
                                    .values_list("transaction_id", flat=True))
            ids.holds.update(Hold.objects.filter(window, account=account).values_list("id", flat=True))
            ids.intents.update(PaymentIntent.objects.filter(
                window, Q(source_account=account) | Q(destination_account=account)).values_list("id", flat=True))
            ids.payouts.update(Payout.objects.filter(window, account=account).values_list("id", flat=True))
            _expand(scope, ids)
            return ids
        recent = LedgerEntry.objects.filter(account=account).order_by("-sequence")[:ACCOUNT_WINDOW]
        ids.transactions.update(recent.values_list("transaction_id", flat=True))
        ids.holds.update(Hold.objects.filter(account=account).order_by("-id")[:ACCOUNT_WINDOW]
                         .values_list("id", flat=True))
        ids.intents.update(PaymentIntent.objects.filter(Q(source_account=account) | Q(destination_account=account))
                           .order_by("-id")[:ACCOUNT_WINDOW].values_list("id", flat=True))
        ids.payouts.update(Payout.objects.filter(account=account).order_by("-id")[:ACCOUNT_WINDOW]
                           .values_list("id", flat=True))
    else:
        roots: dict[str, tuple[type[Any], str]] = {
            "pi": (PaymentIntent, "payment intent"), "hold": (Hold, "hold"), "txn": (LedgerTransaction, "transaction"),
            "po": (Payout, "payout")}
        model, label = roots[kind]
        _one(scope, model, root, action=action, label=label)
        _add_resource(ids, root)
    _expand(scope, ids)
    return ids


def _add_resource(ids: _Ids, resource_id: str) -> None:
    target = {"pi": ids.intents, "hold": ids.holds, "txn": ids.transactions, "po": ids.payouts,
              "acct": ids.accounts}.get(resource_id.split("_", 1)[0])
    if target is not None:
        target.add(resource_id)


def _expand(scope: Scope, ids: _Ids) -> None:
    """What caused the objects and what they caused, within the tenant: a transaction's hold,
    intent, payout and reversal; an intent's hold and postings, and the payouts that later
    moved its money out of the merchant's account; a hold's intent."""
    txns = scoped(LedgerTransaction.objects.filter(
        Q(pk__in=ids.transactions) | Q(reverses_id__in=ids.transactions) | Q(reversed_by__in=ids.transactions)),
        scope).values_list("id", "hold_id", "payment_intent_id", "payout_id", "reverses_id")
    for txn_id, hold_id, intent_id, payout_id, reverses_id in txns:
        ids.transactions.add(txn_id)
        ids.holds.update(filter(None, [hold_id]))
        ids.intents.update(filter(None, [intent_id]))
        ids.payouts.update(filter(None, [payout_id]))
        ids.transactions.update(filter(None, [reverses_id]))
    intents = scoped(PaymentIntent.objects.filter(Q(pk__in=ids.intents) | Q(hold_id__in=ids.holds)), scope)
    settled: list[tuple[str, str, datetime]] = []
    for intent_id, hold_id, status, destination, created in intents.values_list(
            "id", "hold_id", "status", "destination_account_id", "created_at"):
        ids.intents.add(intent_id)
        ids.holds.update(filter(None, [hold_id]))
        if status == PaymentIntent.SUCCEEDED:
            settled.append((intent_id, destination, created))
    ids.transactions.update(scoped(LedgerTransaction.objects.filter(
        Q(payment_intent_id__in=ids.intents) | Q(hold_id__in=ids.holds) | Q(payout_id__in=ids.payouts)), scope)
        .values_list("id", flat=True))
    if settled:
        # Whatever later moved the money: payouts from the merchant's account after the payment.
        later = Q()
        for _, destination, created in settled:
            later |= Q(account_id=destination, created_at__gte=created)
        payouts = scoped(Payout.objects.filter(later), scope).order_by("id")[:ACCOUNT_WINDOW]
        new_payouts = set(payouts.values_list("id", flat=True)) - ids.payouts
        if new_payouts:
            ids.payouts |= new_payouts
            ids.transactions.update(scoped(LedgerTransaction.objects.filter(payout_id__in=new_payouts), scope)
                                    .values_list("id", flat=True))


# --- the items -------------------------------------------------------------------------------------------

def _item(at: datetime, kind: TraceKind, object_id: str, summary: str, data: dict[str, Any]) -> TraceItemBody:
    return {"at": iso(at), "kind": kind, "id": object_id, "summary": summary, "data": data}


def _items(scope: Scope, ids: _Ids) -> list[TraceItemBody]:
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
    names = dict(Account.objects.filter(pk__in={e.account_id for t in transactions for e in t.entries.all()})
                 .values_list("id", "name"))
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
    items.sort(key=lambda item: (_at(item), _KIND_ORDER[item["kind"]]))
    return items


def _reconciliation_items(scope: Scope, ids: _Ids, objects: set[str]) -> list[TraceItemBody]:
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


def _history_items(scope: Scope, ids: _Ids) -> list[TraceItemBody]:
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
