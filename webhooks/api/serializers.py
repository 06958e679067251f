from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from zentra.api.fields import StrictCharField

from ..models import Delivery, DeliveryAttempt, Event, WebhookEndpoint


class EventOutput(serializers.ModelSerializer):
    """The event body; also the webhook payload."""

    object = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = ["id", "object", "type", "created_at", "data"]
        read_only_fields = fields

    def get_object(self, obj) -> str:
        return "event"


class AttemptOutput(serializers.ModelSerializer):
    at = serializers.DateTimeField(source="attempted_at")

    class Meta:
        model = DeliveryAttempt
        fields = ["number", "at", "status_code", "duration_ms", "response_body", "error", "next_attempt_at"]
        read_only_fields = fields


class DeliveryOutput(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    event = serializers.CharField(source="event_id")
    endpoint = serializers.CharField(source="endpoint_id")
    attempts = AttemptOutput(many=True)

    class Meta:
        model = Delivery
        fields = ["id", "object", "event", "endpoint", "status", "attempts_count", "next_attempt_at", "created_at",
                  "completed_at", "attempts"]
        read_only_fields = fields

    def get_object(self, obj) -> str:
        return "delivery"


def delivery_payload(delivery: Delivery) -> dict:
    return DeliveryOutput(delivery).data


class EventDetailOutput(EventOutput):
    deliveries = serializers.SerializerMethodField()

    class Meta(EventOutput.Meta):
        fields = EventOutput.Meta.fields + ["deliveries"]
        read_only_fields = fields

    @extend_schema_field(DeliveryOutput(many=True))
    def get_deliveries(self, obj):
        deliveries = obj.deliveries.order_by("id").prefetch_related("attempts")
        return DeliveryOutput(deliveries, many=True).data


class EndpointOutput(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "object", "url", "event_types", "description", "status", "disabled_reason", "created_at",
                  "last_success_at", "failing_since", "previous_secret_expires_at"]
        read_only_fields = fields

    def get_object(self, obj) -> str:
        return "webhook_endpoint"


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(help_text="whsec_...: shown this once")

    class Meta(EndpointOutput.Meta):
        fields = EndpointOutput.Meta.fields + ["secret"]
        read_only_fields = fields


def endpoint_payload(endpoint: WebhookEndpoint) -> dict:
    return EndpointOutput(endpoint).data


class EndpointCreateInput(serializers.Serializer):
    url = StrictCharField(max_length=2000)
    event_types = serializers.ListField(child=StrictCharField(max_length=100), required=False, min_length=1,
                                        max_length=50)
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class RedeliverInput(serializers.Serializer):
    endpoint = StrictCharField(max_length=40, required=False)


class RedeliverFailedInput(serializers.Serializer):
    since = serializers.DateTimeField()
