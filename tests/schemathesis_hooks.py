"""schemathesis hooks (schemathesis.toml names this module): what a real client does and the
OpenAPI document cannot say.

Each hook changes only a valid (positive) part of a request, and keeps it valid: the checks
still judge it as valid input. None of them touches an invalid one, so refusals are tested
as generated.

- Every POST carries a fresh Idempotency-Key, as a client sends one per new request; drawn
  keys repeat ("0", "a"), and a repeat is answered as a replay or 422 idempotency_key_reused
  instead of reaching the operation.
- Rules relative to now or between two fields, stated in the document's descriptions
  (zentra/api/schema_inputs.py) but not expressible in JSON Schema: a hold's `expires_at` is in
  the future and within ZENTRA_HOLD_MAX_SECONDS, a payment's two accounts differ, an
  amount_limit rule's `min` does not exceed its `max`, an evidence export's period is over and
  ordered, a settlement report's period is ordered, a period close's `until` is in the past.
- A settlement report's body is a CSV whose lines obey rules no schema states (net = gross - fee,
  booked within the period): a valid upload is the report of a provider that booked nothing,
  its header alone. Malformed reports are the negative cases, and tests/reconciliation's.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation

IDEMPOTENCY_KEY = "Idempotency-Key"
_run = uuid.uuid4().hex[:12]
_keys = itertools.count()


def _valid(case: Any, location: ParameterLocation) -> bool:
    return case.meta is None or not case.meta.is_negative_at(location)


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    if case.headers and IDEMPOTENCY_KEY in case.headers and _valid(case, ParameterLocation.HEADER):
        case.headers[IDEMPOTENCY_KEY] = f"st-{_run}-{next(_keys)}"
    if isinstance(case.body, dict) and _valid(case, ParameterLocation.BODY):
        _body_rules(case.operation.path, case.body)
    if case.operation.path == "/v1/settlement_reports" and case.method.upper() == "POST":
        _settlement_report(case)


def _settlement_report(case: Any) -> None:
    if _valid(case, ParameterLocation.BODY):
        case.body = "line_id,type,provider_reference,currency,gross,fee,net,booked_at\n"
    query = case.query or {}
    if _valid(case, ParameterLocation.QUERY) and isinstance(query.get("period_start"), str) \
            and isinstance(query.get("period_end"), str):
        now = datetime.now(UTC)
        query["period_start"] = (now - timedelta(days=1)).isoformat()
        query["period_end"] = now.isoformat()


def _body_rules(path: str, body: dict[str, Any]) -> None:
    if path == "/v1/holds" and isinstance(body.get("expires_at"), str):
        body["expires_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    elif path == "/v1/payment_intents" and body.get("source_account") == body.get("destination_account"):
        source = body.get("source_account")
        if isinstance(source, str) and source:
            body["destination_account"] = source[:-1] + ("x" if source[-1] != "x" else "y")
    elif path == "/v1/evidence_exports":
        # The period is over and ordered: `from` before `to`, `to` not in the future.
        now = datetime.now(UTC)
        if isinstance(body.get("to"), str):
            body["to"] = (now - timedelta(minutes=1)).isoformat()
        if isinstance(body.get("from"), str):
            body["from"] = (now - timedelta(days=1)).isoformat()
    elif path == "/v1/ledger_periods/close" and isinstance(body.get("until"), str):
        body["until"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    elif path.startswith("/v1/policy_rules") and body.get("kind") == "amount_limit":
        params = body.get("params")
        if isinstance(params, dict) and isinstance(params.get("min"), int) and isinstance(params.get("max"), int):
            params["min"], params["max"] = sorted((params["min"], params["max"]))
