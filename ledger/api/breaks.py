"""Reconciliation breaks in the API: the ledger's own verification's and settlement matching's,
one model (../shared/API.md, Reconciliation)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audit.errors import ApprovalNotPending
from audit.shapes import ApprovalBody, approval_body
from zentra.api.fields import StrictCharField, StrictChoiceField
from zentra.api.pagination import LIST_PARAMS
from zentra.api.schema import ListOf, problems
from zentra.api.views import TenantAPIView
from zentra.errors import InvalidStateTransition

from ..models import BREAK_RESOLUTIONS, ReconciliationBreak
from ..services.breaks import break_adjustment_propose, break_resolve
from ..services.postings import EntryInput
from ..shapes import ReconciliationBreakBody, reconciliation_break_body
from .serializers import EntryInputSerializer

BREAK_STATUSES = (ReconciliationBreak.OPEN, ReconciliationBreak.RESOLVED)


class BreakResolveInput(serializers.Serializer):
    resolution = StrictChoiceField(choices=BREAK_RESOLUTIONS)
    note = StrictCharField(max_length=2000)
    entries = EntryInputSerializer(many=True, required=False, min_length=2, max_length=100)  # type: ignore[call-arg]


class BreakListView(TenantAPIView):
    @extend_schema(operation_id="reconciliation_breaks_list", responses=ListOf(ReconciliationBreakBody),
                   parameters=LIST_PARAMS + [OpenApiParameter("status", str, enum=list(BREAK_STATUSES)),
                                             OpenApiParameter("kind", str), OpenApiParameter("report", str)])
    def get(self, request: Request) -> Response:
        """The tenant's reconciliation breaks, newest first."""
        queryset = ReconciliationBreak.objects.filter(tenant=self.tenant)
        cursor_queryset = queryset
        queryset = self.choice_filter(queryset, "status", BREAK_STATUSES)
        for param, field in (("kind", "kind"), ("report", "report_id")):
            value = request.query_params.get(param)
            if value is not None:
                queryset = queryset.filter(**{field: value})
        return self.list_response(queryset, reconciliation_break_body, cursor_queryset=cursor_queryset)


class BreakDetailView(TenantAPIView):
    @extend_schema(operation_id="reconciliation_breaks_retrieve", responses=ReconciliationBreakBody)
    def get(self, request: Request, break_id: str) -> Response:
        return Response(reconciliation_break_body(self.tenant_object(ReconciliationBreak, break_id,
                                                                     label="reconciliation break")))


class BreakResolveView(TenantAPIView):
    @extend_schema(operation_id="reconciliation_breaks_resolve", request=BreakResolveInput,
                   responses={200: ReconciliationBreakBody, 202: ApprovalBody})
    @problems(InvalidStateTransition, ApprovalNotPending)
    def post(self, request: Request, break_id: str) -> Response:
        """Resolve a break: `false_positive` or `provider_claim` at once (200, the break), with a note;
        `adjusting_posting` with its `entries` is proposed for a second actor's approval, from the API
        too (202, the approval); once approved, the posting is made and the break resolved."""
        data = BreakResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        found = self.tenant_object(ReconciliationBreak, break_id, label="reconciliation break")
        if values["resolution"] == "adjusting_posting":
            entries = [EntryInput(account_id=e["account"], direction=e["direction"], amount=e["amount"],
                                  currency=e.get("currency")) for e in values.get("entries") or []]
            approval = break_adjustment_propose(tenant=self.tenant, break_id=found.pk, entries=entries,
                                                note=values["note"], actor=self.actor)
            return Response(approval_body(approval), status=status.HTTP_202_ACCEPTED)
        resolved = break_resolve(tenant=self.tenant, break_id=found.pk, actor=self.actor,
                                 resolution=values["resolution"], note=values["note"])
        return Response(reconciliation_break_body(resolved))
