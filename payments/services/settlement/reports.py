"""Settlement reports received and matched against the ledger (../shared/API.md, Reconciliation).

Receiving checks the whole file first (parse.py): a malformed report is refused with its line
and column, and nothing is kept; the same file again for the same provider is 409
duplicate_report. The lines are stored in one statement, and matching runs in a worker.

Matching is set-based SQL over the report's lines, in one transaction:

1. duplicate_line: a line naming the same movement (type and reference) or the same line id as
   an earlier line of the report, or a movement an earlier report already confirmed;
2. each other line against the ledger's record of that reference (SettlementRecord, written as
   the movement posted): equal currency and gross is matched, otherwise currency_mismatch or
   amount_mismatch; no record is missing_in_ledger (a provider's own fee line is matched by the
   fee posting itself);
3. records of the provider settled within the period that no line names: missing_in_report;
4. matched records are confirmed by the report; every other outcome opens a break in the one
   break model the ledger's verification uses, under a reconciliation run of the report;
5. the report's fees post from the settlement account to the fees account, one transaction per
   report (one pair of entries per currency).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from ledger.models import CREDIT, DEBIT, ReconciliationBreak, ReconciliationRun
from ledger.services.accounts import account_system_ensure
from ledger.services.postings import EntryInput, post_entries
from tenants.models import Tenant
from webhooks.services.outbox import event_emit
from zentra.errors import Conflict, NotFound, ValidationFailed

from ...models import Provider, SettlementReport
from ...shapes import settlement_report_body
from .parse import REFERENCED_TYPES, ReportLine, report_lines

Progress = Callable[[str, int, int], None]
MATCH_STEPS = 6


class DuplicateReport(Conflict):
    code = "duplicate_report"
    title = "Duplicate report"


def _period(period_start: datetime | None, period_end: datetime | None) -> tuple[datetime, datetime]:
    if period_start is None or period_end is None:
        missing = "period_start" if period_start is None else "period_end"
        raise ValidationFailed(f"{missing} is required", errors=[{"field": missing, "message": "Required."}])
    if period_end <= period_start:
        raise ValidationFailed("period_end must be after period_start",
                               errors=[{"field": "period_end", "message": "Must be after period_start."}])
    return period_start, period_end


def settlement_report_receive(*, tenant: Tenant, provider_id: str, content: bytes, period_start: datetime | None,
                              period_end: datetime | None, actor: Actor,
                              source: str = SettlementReport.UPLOAD) -> SettlementReport:
    """Check the whole report, then keep it and its lines (status `matching`); the caller has it
    matched (`settlement_report_match`, in a worker)."""
    provider = Provider.objects.filter(tenant=tenant, pk=provider_id).first()
    if provider is None:
        raise NotFound(f"No such provider: {provider_id}",
                       errors=[{"field": "provider", "message": "No such provider."}])
    start, end = _period(period_start, period_end)
    if len(content) > settings.ZENTRA_SETTLEMENT_REPORT_MAX_BYTES:
        raise ValidationFailed(f"A settlement report is limited to {settings.ZENTRA_SETTLEMENT_REPORT_MAX_BYTES} bytes")
    digest = hashlib.sha256(content).hexdigest()
    lines = report_lines(content, period_start=start, period_end=end)
    try:
        with transaction.atomic(), acting_as(actor):
            report = SettlementReport(tenant=tenant, provider=provider, period_start=start, period_end=end,
                                      sha256=digest, source=source, lines=len(lines), uploaded_by=str(actor),
                                      source_request_id=current_request_id() or "", created_at=timezone.now())
            report._change_reason = f"received ({source})"  # type: ignore[attr-defined]
            report.save()
            _lines_store(report, lines)
    except IntegrityError as exc:
        earlier = SettlementReport.objects.filter(provider=provider, sha256=digest).first()
        if earlier is None:
            raise
        raise DuplicateReport(f"This file (sha256 {digest}) was already received for {provider.name} as "
                              f"{earlier.id}") from exc
    return report


def _lines_store(report: SettlementReport, lines: list[ReportLine]) -> None:
    """Every line in one INSERT of arrays (COPY is not allowed into a table with row-level security)."""
    if not lines:
        return
    names = ("line_no", "line_id", "type", "provider_reference", "currency", "gross", "fee", "net", "booked_at")
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for line in lines:
        for name, values in columns.items():
            values.append(getattr(line, name))
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO payments_settlementline
                   (report_id, tenant_id, outcome, line_no, line_id, type, provider_reference, currency, gross, fee,
                    net, booked_at)
            SELECT %s, %s, '', * FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[],
                                              %s::bigint[], %s::bigint[], %s::timestamptz[])""",
                       [report.id, report.tenant_id, *columns.values()])


_DUPLICATES = """
UPDATE payments_settlementline l SET outcome = 'duplicate_line'
  FROM (SELECT id, row_number() OVER (PARTITION BY type, provider_reference ORDER BY line_no) AS by_reference,
               row_number() OVER (PARTITION BY line_id ORDER BY line_no) AS by_line_id
          FROM payments_settlementline WHERE report_id = %(report)s) d
 WHERE l.id = d.id AND l.report_id = %(report)s
   AND (d.by_line_id > 1 OR (d.by_reference > 1 AND l.type = ANY (%(referenced)s)))
"""
_AGAINST_RECORDS = """
UPDATE payments_settlementline l
   SET record_id = r.id,
       outcome = CASE WHEN r.report_id IS NOT NULL THEN 'duplicate_line'
                      WHEN r.currency <> l.currency THEN 'currency_mismatch'
                      WHEN r.gross <> l.gross THEN 'amount_mismatch'
                      ELSE 'matched' END
  FROM payments_settlementrecord r
 WHERE l.report_id = %(report)s AND l.outcome = ''
   AND r.provider_id = %(provider)s AND r.type = l.type AND r.provider_reference = l.provider_reference
"""
_UNRECORDED = """
UPDATE payments_settlementline SET outcome = CASE WHEN type = 'fee' THEN 'matched' ELSE 'missing_in_ledger' END
 WHERE report_id = %(report)s AND outcome = ''
"""
_CONFIRM = """
UPDATE payments_settlementrecord r SET report_id = %(report)s
  FROM payments_settlementline l
 WHERE l.report_id = %(report)s AND l.outcome = 'matched' AND l.record_id = r.id AND r.report_id IS NULL
"""
# What opens a break: every line not matched, and every record of the period no line named.
_BREAKS = """
WITH firsts AS (
    -- The earliest line, not itself a duplicate, with the same line id or the same movement:
    -- window aggregates, one pass over the report, however many duplicates there are.
    SELECT id,
           min(line_no) FILTER (WHERE outcome <> 'duplicate_line') OVER (PARTITION BY line_id) AS by_line_id,
           min(line_no) FILTER (WHERE outcome <> 'duplicate_line')
               OVER (PARTITION BY type, provider_reference) AS by_reference
      FROM payments_settlementline WHERE report_id = %(report)s)
SELECT l.outcome, l.line_no, l.line_id, l.type, l.provider_reference, l.currency, r.currency, r.gross, l.gross,
       CASE WHEN l.outcome = 'duplicate_line' THEN
            least(CASE WHEN f.by_line_id < l.line_no THEN f.by_line_id END,
                  CASE WHEN f.by_reference < l.line_no AND l.type = ANY (%(referenced)s) THEN f.by_reference END)
       END
  FROM payments_settlementline l
  JOIN firsts f ON f.id = l.id
  LEFT JOIN payments_settlementrecord r ON r.id = l.record_id
 WHERE l.report_id = %(report)s AND l.outcome <> 'matched'
UNION ALL
SELECT 'missing_in_report', NULL, '', r.type, r.provider_reference, r.currency, r.currency, r.gross, NULL, NULL
  FROM payments_settlementrecord r
 WHERE r.tenant_id = %(tenant)s AND r.provider_id = %(provider)s AND r.report_id IS NULL
   AND r.settled_at >= %(start)s AND r.settled_at < %(end)s
   AND NOT EXISTS (SELECT 1 FROM payments_settlementline l WHERE l.report_id = %(report)s AND l.record_id = r.id)
"""
_FEES = """
SELECT currency, sum(fee) FROM payments_settlementline
 WHERE report_id = %(report)s AND outcome <> 'duplicate_line' AND fee > 0
 GROUP BY currency ORDER BY currency
"""


def _break_detail(kind: str, line_no: int | None, line_id: str, type_: str, reference: str, line_currency: str,
                  record_currency: str, expected: int | None, actual: int | None, first_line: int | None) -> str:
    where = f"line {line_no} ({line_id})" if line_no else "no line"
    if kind == "missing_in_report":
        return (f"{type_} {reference} of {expected} {record_currency} settled in the period, and the report has no "
                "line for it")
    if kind == "missing_in_ledger":
        return f"{where}: {type_} {reference} of {actual} {line_currency}, and the ledger has no record of it"
    if kind == "amount_mismatch":
        return f"{where}: {type_} {reference} is {actual} {line_currency} in the report, {expected} in the ledger"
    if kind == "currency_mismatch":
        return f"{where}: {type_} {reference} is in {line_currency} in the report, {record_currency} in the ledger"
    again = f"as line {first_line}" if first_line else "in an earlier report"
    return f"{where}: {type_} {reference} of {actual} {line_currency} was already reported {again}"


def settlement_report_match(*, tenant: Tenant, report_id: str, actor: Actor,
                            progress: Progress | None = None) -> SettlementReport:
    """Match a received report (idempotent: a report no longer `matching` is returned as it is)."""
    tick = progress or (lambda step, done, total: None)
    with transaction.atomic(), acting_as(actor):
        report = SettlementReport.objects.select_for_update().select_related("provider").filter(
            tenant=tenant, pk=report_id).first()
        if report is None:
            raise NotFound(f"No such settlement report: {report_id}")
        if report.status != SettlementReport.MATCHING:
            return report
        now = timezone.now()
        run = ReconciliationRun.objects.create(tenant=tenant, trigger="settlement_report", actor=str(actor),
                                               started_at=now)
        params: dict[str, Any] = {"report": report.id, "provider": report.provider_id, "tenant": tenant.id,
                  "start": report.period_start, "end": report.period_end, "referenced": list(REFERENCED_TYPES)}
        with connection.cursor() as cursor:
            for step, (name, statement) in enumerate((("duplicates", _DUPLICATES), ("ledger records", _AGAINST_RECORDS),
                                                      ("unrecorded", _UNRECORDED), ("confirm", _CONFIRM)), 1):
                tick(name, step, MATCH_STEPS)
                cursor.execute(statement, params)
            tick("breaks", 5, MATCH_STEPS)
            cursor.execute(_BREAKS, params)
            found = cursor.fetchall()
            cursor.execute(_FEES, params)
            fees = [(currency, int(amount)) for currency, amount in cursor.fetchall()]  # sum() is numeric
            cursor.execute("SELECT count(*) FROM payments_settlementline WHERE report_id = %(report)s "
                           "AND outcome = 'matched'", params)
            matched = cursor.fetchone()[0]
        ReconciliationBreak.objects.bulk_create([
            ReconciliationBreak(
                run=run, tenant=tenant, kind=kind, currency=line_currency or "", report_id=report.id,
                line_id=line_id or "", provider_reference=reference or "", expected=expected, actual=actual,
                detail=_break_detail(kind, line_no, line_id, type_, reference, line_currency, record_currency,
                                     expected, actual, first_line), created_at=now)
            for kind, line_no, line_id, type_, reference, line_currency, record_currency, expected, actual, first_line
            in found], batch_size=2000)
        tick("fees", 6, MATCH_STEPS)
        fee_total = sum(amount for _, amount in fees)
        if fee_total:
            entries = []
            for currency, amount in fees:
                system = account_system_ensure(tenant=tenant, currency=currency, actor=actor)
                entries += [EntryInput(system["settlement"].id, DEBIT, amount),
                            EntryInput(system["fees"].id, CREDIT, amount)]
            txn = post_entries(tenant=tenant, entries=entries, actor=actor, kind="fee",
                               description=f"Fees kept by {report.provider.name}, settlement report {report.id}",
                               metadata={"settlement_report": report.id})
            report.fee_transaction_id = txn.id
        finished = timezone.now()
        run.status = ReconciliationRun.BROKEN if found else ReconciliationRun.OK
        run.finished_at, run.entries_checked, run.breaks_count = finished, report.lines, len(found)
        run.save(update_fields=["status", "finished_at", "entries_checked", "breaks_count"])
        report.status, report.matched, report.breaks = SettlementReport.MATCHED, matched, len(found)
        report.fees_posted, report.run_id, report.finished_at = fee_total, run.id, finished
        report._change_reason = f"matched: {matched} lines, {len(found)} breaks"  # type: ignore[attr-defined]
        report.save(update_fields=["status", "matched", "breaks", "fees_posted", "fee_transaction_id", "run_id",
                                   "finished_at"])
        event_emit(tenant=tenant, type="settlement_report.matched", resource_id=report.id,
                   data_object=dict(settlement_report_body(report)), actor=actor)
        return report


def settlement_report_fail(*, tenant: Tenant, report_id: str, actor: Actor, reason: str) -> SettlementReport | None:
    """Matching could not finish (a bug, the database gone): the report says so, and why."""
    with transaction.atomic(), acting_as(actor):
        report = SettlementReport.objects.select_for_update().filter(tenant=tenant, pk=report_id,
                                                                    status=SettlementReport.MATCHING).first()
        if report is None:
            return None
        report.status, report.failure_reason, report.finished_at = SettlementReport.FAILED, reason[:500], timezone.now()
        report._change_reason = "matching failed"  # type: ignore[attr-defined]
        report.save(update_fields=["status", "failure_reason", "finished_at"])
        event_emit(tenant=tenant, type="settlement_report.failed", resource_id=report.id,
                   data_object=dict(settlement_report_body(report)), actor=actor)
        return report
