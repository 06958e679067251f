from rest_framework import serializers

from ..models import Event


class EventOutput(serializers.ModelSerializer):
    """The event body; also the webhook payload."""

    object = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = ["id", "object", "type", "created_at", "data"]
        read_only_fields = fields

    def get_object(self, obj) -> str:
        return "event"
