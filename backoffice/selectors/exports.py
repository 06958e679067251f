"""What an evidence export holds (docs/evidence-exports.md): the files of the zip, as JSON-ready
values, for one account, payment intent or hold over a period [from, to).

The story itself is the trace's (selectors/trace.py) limited to the period: transitions, events
with their deliveries and attempts, history rows, access denials and request records come from
its items, so the admin's trace page, `GET /v1/trace/{id}` and an export tell the same story.
Read here besides: the statement and every entry with its chain hash (the trace's entries carry
no hashes), and the calls that named the resource in their path (reads leave no other trace).
Everything is read within the scope's tenants.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Model

from audit.models import RequestRecord
from ledger.models import Account, Hold, LedgerEntry, logical_account_of
from ledger.selectors import account_row_ids, holds_with_transaction_refs
from ledger.shapes import account_body, hold_body
from payments.models import PaymentIntent
from payments.shapes import payment_intent_body
from tenants.selectors import Scope, scoped
from zentra.shapes import iso, iso_or_none

from ..models import EvidenceExport
from .trace import Period, TraceItemBody, trace_of

# What an export may be about: id prefix -> (model, label).
EXPORTABLE: dict[str, tuple[type[Model], str]] = {
    "acct": (Account, "account"), "pi": (PaymentIntent, "payment intent"), "hold": (Hold, "hold")}

README = """Zentra evidence export
======================

resource           the account (acct_), payment intent (pi_) or hold (hold_) this export is about
period             [from, to) as manifest.json says (from: null means since the resource began)

statement.json     the resource as it stood when the export was built; for an account its opening
                   and closing balance for the period and every entry in it, with its chain hash
entries.json       every ledger entry of the postings in the period: sequence, balance_after,
                   hash (the account's hash chain) and key_id (the ledger key that chained it)
transitions.json   state changes: payment intent transitions, and status changes of holds,
                   accounts and payouts (from their history rows)
events.json        events emitted, each with its webhook deliveries and every delivery attempt
history.json       history rows (django-simple-history) of the objects involved, with what changed
access_denials.json  refused attempts on these objects or within these requests
requests.json      API request records that made these objects or named the resource
trace.json         the whole story in time order (as GET /v1/trace/{id} tells it), for the period
manifest.json      kid, resource, from, to, created_at, and the sha256 of every file above
manifest.sig       base64 Ed25519 signature of the exact bytes of manifest.json, under key kid

Verify: python scripts/verify_export.py THIS.zip --keys signing_keys.json
(signing_keys.json: the answer of GET /v1/signing_keys), or python manage.py verify_export THIS.zip
"""


def exportable_label(resource: str) -> str | None:
    """The label of what `resource` names when it can be exported, else None."""
    prefix, _, rest = resource.partition("_")
    return EXPORTABLE[prefix][1] if prefix in EXPORTABLE and rest else None


def export_contents(scope: Scope, export: EvidenceExport) -> dict[str, Any]:
    """The files of the zip (name -> JSON value), README.txt aside."""
    period = Period(export.period_from, export.period_to)
    story = trace_of(scope, export.resource, action="evidence_export", period=period)
    items = story["items"]
    of_kind = _by_kind(items)
    entries = list(scoped(LedgerEntry.objects.filter(transaction_id__in=[i["id"] for i in of_kind["transaction"]]),
                          scope).order_by("account_id", "sequence"))
    return {
        "statement.json": _statement(scope, export, period, of_kind["transaction"]),
        "entries.json": [_entry(entry) for entry in entries],
        "transitions.json": _transitions(of_kind["transition"], of_kind["history"]),
        "events.json": _events(of_kind["event"], of_kind["delivery_attempt"]),
        "history.json": [{"at": i["at"], "object": i["id"], "summary": i["summary"], **i["data"]}
                         for i in of_kind["history"]],
        "access_denials.json": [{"at": i["at"], **i["data"]} for i in of_kind["access_denial"]],
        "requests.json": _requests(scope, export.resource, period, of_kind["request"]),
        "trace.json": story,
    }


def _by_kind(items: Iterable[TraceItemBody]) -> dict[str, list[TraceItemBody]]:
    grouped: dict[str, list[TraceItemBody]] = {kind: [] for kind in (
        "request", "transition", "transaction", "event", "delivery_attempt", "history", "access_denial")}
    for item in items:
        grouped.setdefault(item["kind"], []).append(item)
    return grouped


def _entry(entry: LedgerEntry) -> dict[str, Any]:
    return {"id": entry.id, "transaction": entry.transaction_id, "account": entry.account_id,
            "direction": entry.direction, "amount": entry.amount, "currency": entry.currency,
            "sequence": entry.sequence, "balance_after": entry.balance_after, "hash": entry.hash,
            "key_id": entry.key_id, "created_at": iso(entry.created_at)}


def _statement(scope: Scope, export: EvidenceExport, period: Period,
               transactions: list[TraceItemBody]) -> dict[str, Any]:
    # `resource`: the object as it stood when the export was built (its history is in history.json).
    head = {"resource_id": export.resource, "from": iso_or_none(period.since), "to": iso_or_none(period.until)}
    prefix = export.resource.split("_", 1)[0]
    if prefix == "acct":
        account = scoped(Account.objects.filter(pk=export.resource), scope).get()
        # Per chain: the account's own row, and each shard of a hot account (its balance their sum).
        chains: list[dict[str, Any]] = []
        entries: list[LedgerEntry] = []
        for row_id in account_row_ids(account):
            before = (LedgerEntry.objects.filter(account_id=row_id, created_at__lt=period.since)
                      .order_by("-created_at", "-sequence").first() if period.since is not None else None)
            rows = list(LedgerEntry.objects.filter(period.q(), account_id=row_id).order_by("sequence"))
            opening = before.balance_after if before else 0
            entries += rows
            chains.append({"shard": logical_account_of(row_id)[1], "opening_balance": opening,
                           "closing_balance": rows[-1].balance_after if rows else opening,
                           # The chain link before the period's first entry: where its hashes continue from.
                           "previous_hash": before.hash if before else None})
        entries.sort(key=lambda entry: (entry.created_at, entry.account_id, entry.sequence))
        body = {**head, "resource": dict(account_body(account)), "currency": account.currency,
                "opening_balance": sum(chain["opening_balance"] for chain in chains),
                "closing_balance": sum(chain["closing_balance"] for chain in chains),
                "previous_hash": chains[0]["previous_hash"], "entries": [_entry(entry) for entry in entries]}
        if len(chains) > 1:
            body["shards"] = chains
        return body
    if prefix == "pi":
        intent = scoped(PaymentIntent.objects.filter(pk=export.resource), scope).get()
        resource: dict[str, Any] = dict(payment_intent_body(intent))
    else:
        hold = scoped(holds_with_transaction_refs(Hold.objects.filter(pk=export.resource)), scope).get()
        resource = dict(hold_body(hold))
    return {**head, "resource": resource, "transactions": [{"at": i["at"], **i["data"]} for i in transactions]}


def _transitions(transitions: list[TraceItemBody], history: list[TraceItemBody]) -> list[dict[str, Any]]:
    rows = [{"at": i["at"], "object": i["id"], "model": "payments.paymentintent", "from": i["data"]["from"],
             "to": i["data"]["to"], "actor": i["data"]["actor"], "reason": i["data"]["reason"]} for i in transitions]
    for item in history:
        data = item["data"]
        change = data.get("changes", {}).get("status")
        # An intent's own transitions are above, with their reasons; its history repeats them.
        if change and data["model"] != "payments.paymentintent":
            rows.append({"at": item["at"], "object": item["id"], "model": data["model"], "from": change[0],
                         "to": change[1], "actor": data["actor"], "reason": data["reason"]})
    rows.sort(key=lambda row: _instant(row["at"]))
    return rows


def _events(events: list[TraceItemBody], attempts: list[TraceItemBody]) -> list[dict[str, Any]]:
    deliveries: dict[str, dict[str, Any]] = {}
    for item in attempts:
        data = item["data"]
        delivery = deliveries.setdefault(data["delivery"], {
            "id": data["delivery"], "event": data["event"], "endpoint": data["endpoint"], "url": data["url"],
            "status": data["delivery_status"], "attempts": []})
        if data["number"]:  # 0: queued, not attempted yet
            delivery["attempts"].append({"at": item["at"], **{key: value for key, value in data.items() if key in (
                "number", "status_code", "duration_ms", "response_body", "error", "next_attempt_at")}})
    return [{"id": item["id"], "at": item["at"], **item["data"],
             "deliveries": [d for d in deliveries.values() if d["event"] == item["id"]]} for item in events]


def _requests(scope: Scope, resource: str, period: Period, traced: list[TraceItemBody]) -> list[dict[str, Any]]:
    rows = {item["id"]: {"at": item["at"], **item["data"]} for item in traced}
    # Calls that named the resource (reads of it, refused writes): the tenant's calls of the
    # period, by the (tenant, time) index, then by path.
    named = scoped(RequestRecord.objects.filter(period.q(), path__contains=resource), scope).order_by("created_at")
    for record in named:
        rows.setdefault(record.request_id, {
            "at": iso(record.created_at), "request_id": record.request_id, "method": record.method,
            "path": record.path, "status": record.status, "actor": record.actor,
            "idempotency_key": record.idempotency_key, "idempotent_replay": record.idempotent_replay,
            "duration_ms": record.duration_ms})
    return sorted(rows.values(), key=lambda row: (_instant(row["at"]), row["request_id"]))


def _instant(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))
