"""The back office API: the trace of any id, and evidence exports."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from zentra.api.pagination import LIST_PARAMS
from zentra.api.schema import ListOf, ZentraAutoSchema, problems
from zentra.api.views import TenantAPIView
from zentra.errors import InvalidStateTransition

from ..models import EvidenceExport, EvidenceExportDownload
from ..selectors.trace import TraceBody, trace_of
from ..services.exports import evidence_export_download, evidence_export_request
from ..shapes import EvidenceExportBody, evidence_export_body
from .serializers import EvidenceExportCreateInput


class TraceView(TenantAPIView):
    """The story of an object (`req_`, `pi_`, `hold_`, `txn_`, `acct_`, `po_`, `evt_`, `del_`)
    and of everything it caused or was caused by, oldest first: requests, transitions, policy
    decisions, provider attempts, holds, ledger transactions with their entries, events,
    delivery attempts, history rows and access denials. For a payment intent it follows the
    money from the customer to the reserve, the settlement account, the merchant and the
    payouts that later moved it."""

    @extend_schema(operation_id="trace_retrieve", responses=TraceBody)
    def get(self, request: Request, object_id: str) -> Response:
        return Response(trace_of(self.scope, object_id, action=f"{request.method} {request.path}"))


def _exports(tenant_id: str) -> Any:
    # The zip stays in the database until it is downloaded.
    return EvidenceExport.objects.filter(tenant_id=tenant_id).defer("archive")


class EvidenceExportListCreateView(TenantAPIView):
    @extend_schema(operation_id="evidence_exports_list", responses=ListOf(EvidenceExportBody), parameters=[
        *LIST_PARAMS, OpenApiParameter("resource", str, description="exports of this account, payment intent or hold"),
        OpenApiParameter("status", str, enum=[value for value, _ in EvidenceExport.STATUSES])])
    def get(self, request: Request) -> Response:
        queryset = _exports(self.tenant.id)
        if "resource" in request.query_params:
            queryset = queryset.filter(resource=request.query_params["resource"])
        queryset = self.choice_filter(queryset, "status", {value for value, _ in EvidenceExport.STATUSES})
        return self.list_response(queryset, evidence_export_body, cursor_queryset=_exports(self.tenant.id))

    @extend_schema(operation_id="evidence_exports_create", request=EvidenceExportCreateInput,
                   responses={202: EvidenceExportBody})
    def post(self, request: Request) -> Response:
        """Ask for a signed zip of the evidence about an account, payment intent or hold over a
        period. Answered at once with the export `building`; a worker builds it (status `ready`),
        then `GET /v1/evidence_exports/{export_id}/download` serves it."""
        data = EvidenceExportCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        export = evidence_export_request(scope=self.scope, resource=values["resource"], period_from=values["from"],
                                         period_to=values["to"], actor=self.actor,
                                         action=f"{request.method} {request.path}")
        return Response(evidence_export_body(export), status=status.HTTP_202_ACCEPTED)


class EvidenceExportDetailView(TenantAPIView):
    @extend_schema(operation_id="evidence_exports_retrieve", responses=EvidenceExportBody)
    def get(self, request: Request, export_id: str) -> Response:
        return Response(evidence_export_body(self.tenant_object(_exports(self.tenant.id), export_id,
                                                                label="evidence export")))


class ZipDownloadSchema(ZentraAutoSchema):
    """The answer is the zip itself, not JSON."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        responses["200"]["description"] = ("The export's zip (application/zip): the evidence files, manifest.json "
                                           "and manifest.sig.")
        responses["200"]["content"] = {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
        responses["200"]["headers"]["Content-Disposition"] = {
            "schema": {"type": "string"}, "required": True, "description": "attachment; filename=\"exp_....zip\""}
        return responses


class EvidenceExportDownloadView(TenantAPIView):
    schema = ZipDownloadSchema()

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # A client asking for application/zip is right; errors still answer problem+json.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(operation_id="evidence_exports_download", responses={200: None})
    @problems(InvalidStateTransition)
    def get(self, request: Request, export_id: str) -> HttpResponse:
        """The zip of a ready export (409 `invalid_state_transition` while it is building, with
        Retry-After, or when it failed). Every download is recorded as evidence: who, when, which
        export and under which request id."""
        export = self.tenant_object(EvidenceExport.objects.all(), export_id, label="evidence export")
        archive = evidence_export_download(export=export, actor=self.actor, channel=EvidenceExportDownload.API)
        response = HttpResponse(archive, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{export.id}.zip"'
        return response
