"""Input shapes of the webhook API (outputs are the public shapes of webhooks/shapes.py)."""

from rest_framework import serializers

from zentra.api.fields import StrictCharField


class EndpointCreateInput(serializers.Serializer):
    url = StrictCharField(max_length=2000)
    event_types = serializers.ListField(child=StrictCharField(max_length=100), required=False, min_length=1,
                                        max_length=50)
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class RedeliverInput(serializers.Serializer):
    endpoint = StrictCharField(max_length=40, required=False)


class RedeliverFailedInput(serializers.Serializer):
    since = serializers.DateTimeField()
