"""API of payment intents, payouts and inbound provider events."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from zentra.api.fields import AmountField, MetadataField, StrictCharField
from zentra.api.pagination import LIST_PARAMS
from zentra.api.views import TenantAPIView

from ..models import Account, PaymentIntent, Payout
from ..representations import payment_intent_payload, payout_payload
from ..services.intents import (payment_intent_cancel, payment_intent_confirm, payment_intent_create,
                                provider_event_receive)
from ..services.payouts import payout_create
from .serializers import CurrencyField


class PaymentIntentCreateInput(serializers.Serializer):
    amount = AmountField()
    currency = CurrencyField()
    source_account = StrictCharField(max_length=40)
    destination_account = StrictCharField(max_length=40)
    rail = StrictCharField(max_length=30, required=False, allow_blank=True, default="")
    metadata = MetadataField()


class ReasonInput(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class TransitionOutput(serializers.Serializer):
    to = serializers.CharField()
    at = serializers.DateTimeField()
    actor = serializers.CharField()
    reason = serializers.CharField()


class PaymentIntentOutput(serializers.ModelSerializer):
    object = serializers.CharField(default="payment_intent")
    source_account = serializers.CharField(source="source_account_id")
    destination_account = serializers.CharField(source="destination_account_id")
    hold = serializers.CharField(source="hold_id", allow_null=True)
    route = serializers.CharField(source="route_id", allow_null=True)
    transitions = TransitionOutput(many=True)
    policy_decisions = serializers.ListField(child=serializers.DictField())
    provider_attempts = serializers.ListField(child=serializers.DictField())

    class Meta:
        model = PaymentIntent
        fields = ["id", "object", "amount", "currency", "source_account", "destination_account", "rail", "status",
                  "hold", "route", "provider_reference", "failure_reason", "transitions", "policy_decisions",
                  "provider_attempts", "metadata", "created_at"]
        read_only_fields = fields

    def to_representation(self, obj):
        return payment_intent_payload(obj)


class PayoutCreateInput(serializers.Serializer):
    account = StrictCharField(max_length=40)
    amount = AmountField()
    metadata = MetadataField()


class PayoutOutput(serializers.ModelSerializer):
    object = serializers.CharField(default="payout")
    account = serializers.CharField(source="account_id")
    transactions = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Payout
        fields = ["id", "object", "account", "amount", "currency", "status", "failure_reason", "transactions",
                  "metadata", "created_at", "resolved_at"]
        read_only_fields = fields

    def to_representation(self, obj):
        return payout_payload(obj)


INTENT_STATUSES = set(PaymentIntent.STATUSES)


class PaymentIntentListCreateView(TenantAPIView):
    @extend_schema(operation_id="payment_intents_list", responses=PaymentIntentOutput(many=True),
                   parameters=LIST_PARAMS + [OpenApiParameter("status", str, enum=PaymentIntent.STATUSES),
                                             OpenApiParameter("source_account", str)])
    def get(self, request):
        queryset = PaymentIntent.objects.filter(tenant=self.tenant)
        cursor_queryset = queryset
        queryset = self.choice_filter(queryset, "status", INTENT_STATUSES)
        if request.query_params.get("source_account"):
            queryset = queryset.filter(source_account_id=request.query_params["source_account"])
        return self.list_response(queryset, PaymentIntentOutput, cursor_queryset=cursor_queryset)

    @extend_schema(operation_id="payment_intents_create", request=PaymentIntentCreateInput,
                   responses={201: PaymentIntentOutput})
    def post(self, request):
        data = PaymentIntentCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        intent = payment_intent_create(tenant=self.tenant, amount=values["amount"], currency=values["currency"],
                                       source_account_id=values["source_account"],
                                       destination_account_id=values["destination_account"], rail=values["rail"],
                                       metadata=values["metadata"], actor=self.actor)
        return Response(PaymentIntentOutput(intent).data, status=status.HTTP_201_CREATED)


class PaymentIntentDetailView(TenantAPIView):
    @extend_schema(operation_id="payment_intents_retrieve", responses=PaymentIntentOutput)
    def get(self, request, intent_id):
        return Response(PaymentIntentOutput(self.tenant_object(PaymentIntent.objects.all(), intent_id,
                                                               label="payment intent")).data)


class PaymentIntentConfirmView(TenantAPIView):
    @extend_schema(operation_id="payment_intents_confirm", request=None, responses=PaymentIntentOutput)
    def post(self, request, intent_id):
        self.tenant_object(PaymentIntent.objects.all(), intent_id, label="payment intent")
        intent = payment_intent_confirm(tenant=self.tenant, intent_id=intent_id, actor=self.actor)
        intent.refresh_from_db()
        return Response(PaymentIntentOutput(intent).data)


class PaymentIntentCancelView(TenantAPIView):
    @extend_schema(operation_id="payment_intents_cancel", request=ReasonInput, responses=PaymentIntentOutput)
    def post(self, request, intent_id):
        self.tenant_object(PaymentIntent.objects.all(), intent_id, label="payment intent")
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        intent = payment_intent_cancel(tenant=self.tenant, intent_id=intent_id, actor=self.actor,
                                       reason=data.validated_data["reason"])
        return Response(PaymentIntentOutput(intent).data)


class PayoutListCreateView(TenantAPIView):
    @extend_schema(operation_id="payouts_list", responses=PayoutOutput(many=True), parameters=LIST_PARAMS)
    def get(self, request):
        return self.list_response(Payout.objects.filter(tenant=self.tenant), PayoutOutput)

    @extend_schema(operation_id="payouts_create", request=PayoutCreateInput, responses={201: PayoutOutput})
    def post(self, request):
        data = PayoutCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        self.tenant_object(Account.objects.all(), values["account"], label="account")
        payout = payout_create(tenant=self.tenant, account_id=values["account"], amount=values["amount"],
                               metadata=values["metadata"], actor=self.actor)
        return Response(PayoutOutput(payout).data, status=status.HTTP_201_CREATED)


class PayoutDetailView(TenantAPIView):
    @extend_schema(operation_id="payouts_retrieve", responses=PayoutOutput)
    def get(self, request, payout_id):
        return Response(PayoutOutput(self.tenant_object(Payout.objects.all(), payout_id, label="payout")).data)


class ProviderEventView(APIView):
    """Inbound provider events: authenticated by the provider's HMAC signature, not an API key;
    deduplicated by the provider's event id (a replay answers 200 and changes nothing)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="provider_events_receive", request=None, auth=[],
                   parameters=[OpenApiParameter("Zentra-Provider-Signature", str, OpenApiParameter.HEADER,
                                                required=True, description="t=<unix seconds>,v1=<hex HMAC-SHA256>")],
                   responses={200: serializers.DictField()})
    def post(self, request, provider_id):
        event, applied = provider_event_receive(provider_id=provider_id, body=request.body,
                                                signature=request.headers.get("Zentra-Provider-Signature", ""))
        return Response({"id": event.external_id, "object": "provider_event", "type": event.type,
                         "intent": event.intent_id, "outcome": event.outcome,
                         "status": "applied" if applied else "duplicate"})
