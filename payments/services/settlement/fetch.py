"""The daily fetch: every provider's report of one day, received and matched (beat runs it for
yesterday; `manage.py reconcile_report --fetch DAY` runs it by hand). A built-in sandbox
provider's report is built by the sandbox itself (sandbox_report.py); a provider with nothing
booked that day and nothing awaiting its report has no report to fetch."""

from __future__ import annotations

from datetime import date

from audit.actors import Actor
from tenants.models import Tenant

from ...models import Provider, SettlementRecord, SettlementReport
from .reports import DuplicateReport, settlement_report_match, settlement_report_receive
from .sandbox_report import day_bounds, sandbox_settlement_report


def settlement_reports_fetch(*, tenant: Tenant, day: date, actor: Actor) -> list[SettlementReport]:
    start, end = day_bounds(day)
    matched = []
    for provider in Provider.objects.filter(tenant=tenant, kind="sandbox").order_by("name"):
        content = sandbox_settlement_report(provider, day)
        has_lines = content.count(b"\n") > 1
        awaiting = SettlementRecord.objects.filter(provider=provider, report__isnull=True, settled_at__gte=start,
                                                   settled_at__lt=end).exists()
        if not (has_lines or awaiting):
            continue
        try:
            report = settlement_report_receive(tenant=tenant, provider_id=provider.id, content=content,
                                               period_start=start, period_end=end, actor=actor,
                                               source=SettlementReport.FETCHED)
        except DuplicateReport:
            continue  # fetched and matched already (a second run of the same day)
        matched.append(settlement_report_match(tenant=tenant, report_id=report.id, actor=actor))
    return matched
