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

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict

from django.db.models import Q

from audit.models import RequestRecord
from ledger.models import Account, Hold, LedgerEntry, LedgerTransaction
from ledger.selectors import account_row_ids, account_statement, statement_order_field
from payments.models import (
    PaymentIntent,
    Payout,
)
from tenants.selectors import Scope, object_not_found, scoped
from webhooks.models import Delivery, Event
from zentra.errors import NotFound

from .trace_items import TraceIds, TraceItemBody, item_at, trace_items

# The prefixes a trace starts from, and what they name.
ROOTS = {"req": "request", "pi": "payment intent", "hold": "hold", "txn": "transaction", "acct": "account",
         "po": "payout", "evt": "event", "del": "delivery"}
# An account's story is its most recent activity, not all of it.
ACCOUNT_WINDOW = 50


class TraceBody(TypedDict):
    """The story of `root`, oldest first."""

    object: Literal["trace"]
    root: str
    items: list[TraceItemBody]



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
    items = trace_items(scope, ids)
    if period is not None:
        items = [item for item in items if period.contains(item_at(item))]
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


# --- the closure -----------------------------------------------------------------------------------------

def _one(scope: Scope, model: type[Any], object_id: str, *, action: str, label: str) -> Any:
    found = scoped(model.objects.filter(pk=object_id), scope).first()
    if found is None:
        raise object_not_found(model, object_id, scope=scope, action=action, label=label)
    return found


def _closure(scope: Scope, kind: str, root: str, *, action: str, period: Period | None = None) -> TraceIds:
    ids = TraceIds()
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
            ids.transactions.update(LedgerEntry.objects.filter(window, account_id__in=account_row_ids(account))
                                    .values_list("transaction_id", flat=True))
            ids.holds.update(Hold.objects.filter(window, account=account).values_list("id", flat=True))
            ids.intents.update(PaymentIntent.objects.filter(
                window, Q(source_account=account) | Q(destination_account=account)).values_list("id", flat=True))
            ids.payouts.update(Payout.objects.filter(window, account=account).values_list("id", flat=True))
            _expand(scope, ids)
            return ids
        # Every shard's entries, for a hot account (its statement's order: sequences are per shard).
        recent = account_statement(account).order_by(f"-{statement_order_field(account)}")[:ACCOUNT_WINDOW]
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


def _add_resource(ids: TraceIds, resource_id: str) -> None:
    target = {"pi": ids.intents, "hold": ids.holds, "txn": ids.transactions, "po": ids.payouts,
              "acct": ids.accounts}.get(resource_id.split("_", 1)[0])
    if target is not None:
        target.add(resource_id)


def _expand(scope: Scope, ids: TraceIds) -> None:
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
