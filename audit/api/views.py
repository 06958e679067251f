"""Approvals in the API (../shared/API.md, Approvals): list, read, approve, reject. The deciding
key must differ from the proposing one (403 permission_denied otherwise)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from zentra.api.fields import ReasonInput
from zentra.api.pagination import LIST_PARAMS
from zentra.api.schema import ListOf, problems
from zentra.api.views import TenantAPIView
from zentra.errors import Unprocessable

from ..errors import ApprovalNotPending, SameActorDecision
from ..models import Approval
from ..services.approvals import approval_approve, approval_reject
from ..shapes import ApprovalBody, approval_body


def answered(result: Any, body: Callable[[Any], Any], created: bool = False) -> Response:
    """An action's object (200, or 201 when it made one), or 202 with the approval it waits for
    (tenants/approval_rules.py): every view whose action may need a second person answers this way."""
    if isinstance(result, Approval):
        return Response(approval_body(result), status=status.HTTP_202_ACCEPTED)
    return Response(body(result), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _reason(request: Request) -> str:
    data = ReasonInput(data=request.data)
    data.is_valid(raise_exception=True)
    return str(data.validated_data["reason"])


class ApprovalListView(TenantAPIView):
    @extend_schema(operation_id="approvals_list", responses=ListOf(ApprovalBody), parameters=LIST_PARAMS + [
        OpenApiParameter("status", str, enum=Approval.STATUSES), OpenApiParameter("action", str)])
    def get(self, request: Request) -> Response:
        """The tenant's approvals, newest first."""
        queryset = Approval.objects.filter(tenant_id=self.tenant.id)
        cursor_queryset = queryset
        queryset = self.choice_filter(queryset, "status", Approval.STATUSES)
        action = request.query_params.get("action")
        if action is not None:
            queryset = queryset.filter(action=action)
        return self.list_response(queryset, approval_body, cursor_queryset=cursor_queryset)


class ApprovalDetailView(TenantAPIView):
    @extend_schema(operation_id="approvals_retrieve", responses=ApprovalBody)
    def get(self, request: Request, approval_id: str) -> Response:
        return Response(approval_body(self.tenant_object(Approval, approval_id, label="approval")))


class ApprovalApproveView(TenantAPIView):
    @extend_schema(operation_id="approvals_approve", request=ReasonInput, responses=ApprovalBody)
    @problems(SameActorDecision, ApprovalNotPending, Unprocessable)
    def post(self, request: Request, approval_id: str) -> Response:
        """Approve: the action runs now, through the service it would have used directly, and its
        evidence names both actors. A refusal by that service (422, 409) leaves the approval pending."""
        reason = _reason(request)
        approval = self.tenant_object(Approval, approval_id, label="approval")
        return Response(approval_body(approval_approve(tenant_id=self.tenant.id, approval_id=approval.pk,
                                                       actor=self.actor, reason=reason)))


class ApprovalRejectView(TenantAPIView):
    @extend_schema(operation_id="approvals_reject", request=ReasonInput, responses=ApprovalBody)
    @problems(SameActorDecision, ApprovalNotPending)
    def post(self, request: Request, approval_id: str) -> Response:
        reason = _reason(request)
        approval = self.tenant_object(Approval, approval_id, label="approval")
        return Response(approval_body(approval_reject(tenant_id=self.tenant.id, approval_id=approval.pk,
                                                      actor=self.actor, reason=reason)))
