"""The payments API: payment intents, payouts, policy rules and inbound provider events."""

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.api.views import answered
from audit.errors import ApprovalNotPending
from audit.models import Approval
from audit.shapes import ApprovalBody
from ledger.errors import AccountNotActive, CurrencyMismatch, InsufficientFunds, PolicyDenied
from zentra.api.fields import ReasonInput
from zentra.api.pagination import LIST_PARAMS
from zentra.api.schema import ListOf, problems
from zentra.api.views import TenantAPIView
from zentra.errors import InvalidStateTransition

from ..adapters import SIGNATURE_HEADER
from ..errors import PolicyRuleConflict, SignatureRejected
from ..models import PaymentIntent, Payout, PolicyRule
from ..selectors import intents_of, payouts_of, policy_rules_of
from ..services.approvals import policy_rule_change_or_propose, review_approve_or_propose
from ..services.intents import (
    payment_intent_cancel,
    payment_intent_confirm,
    payment_intent_create,
    payment_intent_decline,
)
from ..services.payouts import payout_create
from ..services.provider_events import provider_event_receive
from ..shapes import (
    PaymentIntentBody,
    PayoutBody,
    PolicyRuleBody,
    ProviderEventReceiptBody,
    payment_intent_body,
    payout_body,
    policy_rule_body,
    provider_event_receipt_body,
)
from .serializers import (
    PaymentIntentCreateInput,
    PayoutCreateInput,
    PolicyRuleInput,
    PolicyRuleUpdateInput,
    RequiredReasonInput,
)

INTENT_STATUSES = set(PaymentIntent.STATUSES)


def _validated(serializer_class: Any, request: Request) -> dict[str, Any]:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    values: dict[str, Any] = data.validated_data
    return values


class PaymentIntentListCreateView(TenantAPIView):
    @extend_schema(operation_id="payment_intents_list", responses=ListOf(PaymentIntentBody),
                   parameters=LIST_PARAMS + [OpenApiParameter("status", str, enum=PaymentIntent.STATUSES),
                                             OpenApiParameter("source_account", str)])
    def get(self, request: Request) -> Response:
        status_filter = self.choice_param("status", INTENT_STATUSES)
        intents = intents_of(self.tenant, status=status_filter,
                             source_account_id=request.query_params.get("source_account"))
        return self.list_response(intents, payment_intent_body)

    @extend_schema(operation_id="payment_intents_create", request=PaymentIntentCreateInput,
                   responses={201: PaymentIntentBody})
    @problems(CurrencyMismatch)
    def post(self, request: Request) -> Response:
        values = _validated(PaymentIntentCreateInput, request)
        return self.answer_with_change(status.HTTP_201_CREATED, payment_intent_body, lambda: payment_intent_create(
            tenant=self.tenant, amount=values["amount"], currency=values["currency"],
            source_account_id=values["source_account"], destination_account_id=values["destination_account"],
            rail=values["rail"], metadata=values["metadata"], actor=self.actor))


class PaymentIntentDetailView(TenantAPIView):
    @extend_schema(operation_id="payment_intents_retrieve", responses=PaymentIntentBody)
    def get(self, request: Request, intent_id: str) -> Response:
        return Response(payment_intent_body(self.tenant_object(PaymentIntent, intent_id, label="payment intent")))


class PaymentIntentConfirmView(TenantAPIView):
    @extend_schema(operation_id="payment_intents_confirm", request=None, responses=PaymentIntentBody)
    @problems(InvalidStateTransition, PolicyDenied, InsufficientFunds, AccountNotActive)
    def post(self, request: Request, intent_id: str) -> Response:
        intent = payment_intent_confirm(tenant=self.tenant, intent_id=intent_id, actor=self.actor)
        return Response(payment_intent_body(intent))


class PaymentIntentCancelView(TenantAPIView):
    @extend_schema(operation_id="payment_intents_cancel", request=ReasonInput, responses=PaymentIntentBody)
    @problems(InvalidStateTransition)
    def post(self, request: Request, intent_id: str) -> Response:
        reason = _validated(ReasonInput, request)["reason"]
        intent = payment_intent_cancel(tenant=self.tenant, intent_id=intent_id, actor=self.actor, reason=reason)
        return Response(payment_intent_body(intent))


class _ReviewDecisionView(TenantAPIView):
    decide: Callable[..., PaymentIntent | Approval]

    def post(self, request: Request, intent_id: str) -> Response:
        reason = _validated(RequiredReasonInput, request)["reason"]
        result = type(self).decide(tenant=self.tenant, intent_id=intent_id, actor=self.actor, reason=reason)
        return answered(result, payment_intent_body)


class PaymentIntentApproveView(_ReviewDecisionView):
    """Decide an intent in review: it goes on to the provider routes. When the tenant asks for a
    second actor on approvals above its threshold (also for API keys), the answer is 202 with the
    approval it waits for."""

    decide = review_approve_or_propose

    @extend_schema(operation_id="payment_intents_approve", request=RequiredReasonInput,
                   responses={200: PaymentIntentBody, 202: ApprovalBody})
    @problems(InvalidStateTransition, ApprovalNotPending)
    def post(self, request: Request, intent_id: str) -> Response:
        return super().post(request, intent_id)


class PaymentIntentDeclineView(_ReviewDecisionView):
    """Decide an intent in review: it fails and its hold is released."""

    decide = payment_intent_decline

    @extend_schema(operation_id="payment_intents_decline", request=RequiredReasonInput, responses=PaymentIntentBody)
    @problems(InvalidStateTransition)
    def post(self, request: Request, intent_id: str) -> Response:
        return super().post(request, intent_id)


class PayoutListCreateView(TenantAPIView):
    @extend_schema(operation_id="payouts_list", responses=ListOf(PayoutBody), parameters=LIST_PARAMS)
    def get(self, request: Request) -> Response:
        return self.list_response(payouts_of(self.tenant), payout_body)

    @extend_schema(operation_id="payouts_create", request=PayoutCreateInput, responses={201: PayoutBody})
    @problems(InsufficientFunds, AccountNotActive, PolicyDenied)
    def post(self, request: Request) -> Response:
        values = _validated(PayoutCreateInput, request)
        return self.answer_with_change(status.HTTP_201_CREATED, payout_body, lambda: payout_create(
            tenant=self.tenant, account_id=values["account"], amount=values["amount"], metadata=values["metadata"],
            actor=self.actor))


class PayoutDetailView(TenantAPIView):
    @extend_schema(operation_id="payouts_retrieve", responses=PayoutBody)
    def get(self, request: Request, payout_id: str) -> Response:
        return Response(payout_body(self.tenant_object(Payout, payout_id, label="payout")))


class PolicyRuleListCreateView(TenantAPIView):
    """The tenant's policy rules, evaluated on every confirmation in a fixed order of kinds
    (amount_limit, velocity_account, velocity_customer, risk_new_account, routing), then by
    position. Each kind takes its own `params`, checked when the rule is saved."""

    @extend_schema(operation_id="policy_rules_list", responses=ListOf(PolicyRuleBody), parameters=LIST_PARAMS)
    def get(self, request: Request) -> Response:
        return self.list_response(policy_rules_of(self.tenant), policy_rule_body)

    @extend_schema(operation_id="policy_rules_create", request=PolicyRuleInput,
                   responses={201: PolicyRuleBody, 202: ApprovalBody})
    @problems(ApprovalNotPending)
    def post(self, request: Request) -> Response:
        """Add a rule (202 with the approval it waits for when the tenant asks API keys for a second actor)."""
        values = _validated(PolicyRuleInput, request)
        reason = values.pop("reason", "")
        result = policy_rule_change_or_propose(tenant=self.tenant, actor=self.actor, reason=reason, values=values)
        return answered(result, policy_rule_body, created=True)


class PolicyRuleDetailView(TenantAPIView):
    @extend_schema(operation_id="policy_rules_retrieve", responses=PolicyRuleBody)
    def get(self, request: Request, rule_id: str) -> Response:
        return Response(policy_rule_body(self.tenant_object(PolicyRule, rule_id, label="policy rule")))

    @extend_schema(operation_id="policy_rules_update", request=PolicyRuleUpdateInput,
                   responses={200: PolicyRuleBody, 202: ApprovalBody})
    @problems(PolicyRuleConflict, ApprovalNotPending)
    def post(self, request: Request, rule_id: str) -> Response:
        """Change some of the rule's fields; the rule as a whole is checked again (202 with the
        approval it waits for when the tenant asks API keys for a second actor)."""
        values = _validated(PolicyRuleUpdateInput, request)
        reason = values.pop("reason", "")
        self.tenant_object(PolicyRule, rule_id, label="policy rule")
        result = policy_rule_change_or_propose(tenant=self.tenant, rule_id=rule_id, actor=self.actor, reason=reason,
                                               values=values)
        return answered(result, policy_rule_body)


class ProviderEventView(APIView):
    """Inbound provider events: authenticated by the provider's HMAC signature, not an API key;
    deduplicated by the provider's event id (a replay answers 200 and changes nothing)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    edge_problem_codes = ("400", "404", "413", "500")

    @extend_schema(operation_id="provider_events_receive", request=None, auth=[],
                   parameters=[OpenApiParameter(SIGNATURE_HEADER, str, OpenApiParameter.HEADER,
                                                required=True, description="t=<unix seconds>,v1=<hex HMAC-SHA256>")],
                   responses={200: ProviderEventReceiptBody})
    @problems(SignatureRejected, InvalidStateTransition)
    def post(self, request: Request, provider_id: str) -> Response:
        event, applied = provider_event_receive(provider_id=provider_id, body=request.body,
                                                signature=request.headers.get(SIGNATURE_HEADER, ""))
        return Response(provider_event_receipt_body(event, applied=applied))
