"""Input shapes of the payments API (outputs are payments/shapes.py)."""

from rest_framework import serializers

from ledger.api.serializers import CurrencyField
from zentra.api.fields import (
    AmountField,
    MetadataField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
)

from ..models import PolicyRule


class PaymentIntentCreateInput(serializers.Serializer):
    amount = AmountField()
    currency = CurrencyField()
    source_account = StrictCharField(max_length=40)
    destination_account = StrictCharField(max_length=40)
    rail = StrictCharField(max_length=30, required=False, allow_blank=True, default="")
    metadata = MetadataField()


class RequiredReasonInput(serializers.Serializer):
    reason = StrictCharField(max_length=500)


class PayoutCreateInput(serializers.Serializer):
    account = StrictCharField(max_length=40)
    amount = AmountField()
    metadata = MetadataField()


class PolicyRuleInput(serializers.Serializer):
    """A rule's fields; `params` is checked per kind by the service (the admin uses the same)."""

    kind = StrictChoiceField(choices=PolicyRule.KIND_ORDER)
    params = MetadataField(required=True, default=serializers.empty)
    position = StrictIntegerField(required=False, min_value=0, max_value=1_000_000, default=100)
    enabled = StrictBooleanField(required=False, default=True)
    currency = StrictCharField(required=False, allow_blank=True, max_length=3, default="")
    rail = StrictCharField(required=False, allow_blank=True, max_length=30, default="")
    description = StrictCharField(required=False, allow_blank=True, max_length=500, default="")
    reason = StrictCharField(required=False, allow_blank=True, max_length=500, default="")


class PolicyRuleUpdateInput(PolicyRuleInput):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty
