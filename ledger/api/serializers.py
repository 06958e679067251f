"""Input shapes of the ledger API: types, ranges and required fields. What an input means (a
system account type, an overdraft limit without overdraft, how far a hold may reach) is the
services' to judge, so the admin gets the same answer. Outputs are ledger/shapes.py."""

from rest_framework import serializers

from zentra.api.fields import (
    MAX_AMOUNT,
    AmountField,
    MetadataField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
)

from .. import currencies
from ..models import ACCOUNT_TYPES


class CurrencyField(StrictCharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_length", 3)
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not currencies.is_supported(value):
            raise serializers.ValidationError(f"{value!r} is not a supported ISO 4217 currency code (upper case).")
        return value


class AccountCreateInput(serializers.Serializer):
    customer = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    currency = CurrencyField()
    account_type = StrictChoiceField(choices=ACCOUNT_TYPES)
    name = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    normal_balance = StrictChoiceField(choices=["debit", "credit"], required=False, default="credit")
    allow_overdraft = StrictBooleanField(required=False, default=False)
    overdraft_limit = StrictIntegerField(required=False, allow_null=True, default=None, min_value=0,
                                         max_value=MAX_AMOUNT)
    metadata = MetadataField()


class EntryInputSerializer(serializers.Serializer):
    account = StrictCharField(max_length=40)
    direction = StrictChoiceField(choices=["debit", "credit"])
    amount = AmountField()
    currency = CurrencyField(required=False)


class TransactionCreateInput(serializers.Serializer):
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    effective_at = serializers.DateTimeField(required=False, default=None)
    entries = EntryInputSerializer(many=True, min_length=2, max_length=100)  # type: ignore[call-arg]
    metadata = MetadataField()


class HoldCreateInput(serializers.Serializer):
    account = StrictCharField(max_length=40)
    amount = AmountField()
    expires_in = StrictIntegerField(required=False, min_value=1, help_text="seconds from now")
    expires_at = serializers.DateTimeField(required=False)
    reference = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    metadata = MetadataField()


class HoldCaptureInput(serializers.Serializer):
    amount = AmountField(required=False)
    destination_account = StrictCharField(max_length=40)
    final = StrictBooleanField(required=False, default=True)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class LedgerPeriodCloseInput(serializers.Serializer):
    until = serializers.DateTimeField(help_text="Close the ledger before this instant (not in the future, after the "
                                                "latest close). ISO 8601; without an offset it is read as UTC.")
