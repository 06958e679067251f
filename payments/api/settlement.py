"""The reconciliation API of payments: settlement reports in, the sandbox providers' own reports out."""

from __future__ import annotations

from datetime import date

from celery import current_app
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from zentra.api.fields import parse_instant
from zentra.api.pagination import LIST_PARAMS
from zentra.api.parsers import CSVParser
from zentra.api.renderers import CSVRenderer
from zentra.api.schema import ListOf, problems
from zentra.api.views import TenantAPIView
from zentra.errors import ValidationFailed

from ..models import Provider, SettlementReport
from ..services.settlement.reports import DuplicateReport, settlement_report_receive
from ..services.settlement.sandbox_report import sandbox_settlement_report
from ..shapes import SettlementReportBody, settlement_report_body
from ..tasks import SETTLEMENT_MATCH_TASK

REPORT_STATUSES = (SettlementReport.MATCHING, SettlementReport.MATCHED, SettlementReport.FAILED)
CSV_BODY = OpenApiTypes.STR


def match_soon(report: SettlementReport) -> None:
    """Hand the matching to a worker. Best effort: with the broker down, the periodic sweep
    (payments.tasks.settlement_reports_match_waiting) matches what is still waiting."""
    try:
        current_app.send_task(SETTLEMENT_MATCH_TASK, args=[report.tenant_id, report.id], retry=False)
    except Exception:  # any broker failure: the report is safe in PostgreSQL, status matching
        pass


class SettlementReportListCreateView(TenantAPIView):
    parser_classes = [CSVParser]

    @extend_schema(operation_id="settlement_reports_list", responses=ListOf(SettlementReportBody),
                   parameters=LIST_PARAMS + [OpenApiParameter("provider", str),
                                             OpenApiParameter("status", str, enum=list(REPORT_STATUSES))])
    def get(self, request: Request) -> Response:
        """The tenant's settlement reports, newest first."""
        queryset = SettlementReport.objects.filter(tenant=self.tenant)
        cursor_queryset = queryset
        provider_id = request.query_params.get("provider")
        if provider_id is not None:
            queryset = queryset.filter(provider=self.tenant_object(Provider, provider_id, label="provider"))
        queryset = self.choice_filter(queryset, "status", REPORT_STATUSES)
        return self.list_response(queryset, settlement_report_body, cursor_queryset=cursor_queryset)

    @extend_schema(
        operation_id="settlement_reports_create", request={"text/csv": CSV_BODY},
        responses={202: SettlementReportBody},
        parameters=[OpenApiParameter("provider", str, required=True, description="prv_...",
                                     pattern=r"^prv_[0-9A-Za-z]+$"),
                    OpenApiParameter("period_start", OpenApiTypes.DATETIME, required=True),
                    OpenApiParameter("period_end", OpenApiTypes.DATETIME, required=True)])
    @problems(DuplicateReport)
    def post(self, request: Request) -> Response:
        """Upload a provider's settlement report (CSV, up to 64 MiB; columns
        `line_id,type,provider_reference,currency,gross,fee,net,booked_at`). It is checked whole: a
        malformed report is 400 naming the line and column, and nothing is kept; the same file again
        for the same provider is 409 duplicate_report. Matching runs in a worker: the report answers
        `matching`, then `matched` with its counts, fees posted and breaks."""
        provider_id = request.query_params.get("provider")
        if not provider_id:
            raise ValidationFailed("provider is required", errors=[{"field": "provider", "message": "Required."}])
        report = settlement_report_receive(
            tenant=self.tenant, provider_id=provider_id, content=request.body, actor=self.actor,
            period_start=parse_instant(request.query_params.get("period_start"), "period_start"),
            period_end=parse_instant(request.query_params.get("period_end"), "period_end"))
        match_soon(report)
        return Response(settlement_report_body(report), status=status.HTTP_202_ACCEPTED)


class SettlementReportDetailView(TenantAPIView):
    @extend_schema(operation_id="settlement_reports_retrieve", responses=SettlementReportBody)
    def get(self, request: Request, report_id: str) -> Response:
        return Response(settlement_report_body(self.tenant_object(SettlementReport, report_id,
                                                                  label="settlement report")))


class SandboxSettlementReportView(TenantAPIView):
    renderer_classes = [CSVRenderer]

    @extend_schema(operation_id="providers_settlement_report",
                   parameters=[OpenApiParameter("date", OpenApiTypes.DATE, required=True,
                                                description="The day (UTC), YYYY-MM-DD.")],
                   responses={200: OpenApiResponse(CSV_BODY, description=(
                       "What the sandbox provider settled that day, with its fees, as a settlement report CSV "
                       "(docs/reconciliation.md): a built-in sandbox provider's own report."))})
    def get(self, request: Request, provider_id: str) -> Response:
        """A sandbox provider's settlement report for one day (UTC): what it settled, with its fees."""
        provider = self.tenant_object(Provider, provider_id, label="provider")
        raw = request.query_params.get("date")
        try:
            day = date.fromisoformat(raw or "")
        except ValueError:
            raise ValidationFailed("date must be a day, YYYY-MM-DD", errors=[
                {"field": "date", "message": "YYYY-MM-DD expected."}]) from None
        if day == date.max:  # its end, the next midnight, is past what Python holds
            raise ValidationFailed("date is out of range", errors=[{"field": "date", "message": "Out of range."}])
        if provider.kind != "sandbox":
            raise ValidationFailed(f"{provider.name} is not a sandbox provider: its reports come from the provider",
                                   errors=[{"field": "provider", "message": "Not a sandbox provider."}])
        return Response(sandbox_settlement_report(provider, day), content_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{provider.name}_{day.isoformat()}.csv"'})
