from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from zentra.api.fields import MAX_AMOUNT, AmountField, MetadataField, StrictBooleanField, StrictCharField, StrictChoiceField, StrictIntegerField

from .. import currencies
from ..models import ACCOUNT_TYPES, Account, Hold, LedgerEntry, LedgerTransaction
from ..representations import hold_payload, transaction_payload
from ..selectors import account_balances


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

    def validate(self, attrs):
        if attrs.get("overdraft_limit") is not None and not attrs.get("allow_overdraft"):
            raise serializers.ValidationError({"overdraft_limit": "Only accounts with allow_overdraft have a limit."})
        if attrs["account_type"] in ("reserve", "settlement", "payout"):
            raise serializers.ValidationError(
                {"account_type": "System accounts (reserve, settlement, payout) are created by bootstrap_tenant."})
        return attrs


class AccountTransitionInput(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class BalancesOutput(serializers.Serializer):
    posted = serializers.IntegerField()
    held = serializers.IntegerField()
    available = serializers.IntegerField(allow_null=True, help_text="null: overdraft without limit")


class AccountOutput(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    balances = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = ["id", "object", "customer", "name", "currency", "account_type", "normal_balance", "status",
                  "allow_overdraft", "overdraft_limit", "is_system", "balances", "metadata", "created_at"]
        read_only_fields = fields

    def get_object(self, obj) -> str:
        return "account"

    @extend_schema_field(BalancesOutput)
    def get_balances(self, obj):
        return account_balances(obj).as_dict()


class BalanceOutput(serializers.Serializer):
    account = serializers.CharField()
    currency = serializers.CharField()
    posted = serializers.IntegerField()
    held = serializers.IntegerField()
    available = serializers.IntegerField(allow_null=True)
    as_of = serializers.DateTimeField()


class EntryInputSerializer(serializers.Serializer):
    account = StrictCharField(max_length=40)
    direction = StrictChoiceField(choices=["debit", "credit"])
    amount = AmountField()
    currency = CurrencyField(required=False)


class TransactionCreateInput(serializers.Serializer):
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    effective_at = serializers.DateTimeField(required=False, default=None)
    entries = EntryInputSerializer(many=True, min_length=2, max_length=100)
    metadata = MetadataField()


class TransactionReverseInput(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class TransactionEntryOutput(serializers.ModelSerializer):
    account = serializers.CharField(source="account_id")

    class Meta:
        model = LedgerEntry
        fields = ["id", "account", "direction", "amount", "currency", "balance_after", "sequence"]
        read_only_fields = fields


class TransactionOutput(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    status = serializers.CharField()
    entries = TransactionEntryOutput(many=True)
    reverses = serializers.CharField(source="reverses_id", allow_null=True)
    reversed_by = serializers.CharField(allow_null=True)

    class Meta:
        model = LedgerTransaction
        fields = ["id", "object", "status", "kind", "description", "entries", "reverses", "reversed_by", "metadata",
                  "created_at", "effective_at"]
        read_only_fields = fields

    def get_object(self, obj) -> str:
        return "transaction"

    def to_representation(self, obj):
        # The fields above document the shape; the payload itself is built in one place.
        fresh = getattr(obj, "posted_entries", None)
        if fresh is not None:  # just posted: entries in hand, nothing can have reversed it yet
            return transaction_payload(obj, entries=fresh, reversed_by=None)
        try:
            reversed_by = obj.reversed_by.id
        except LedgerTransaction.DoesNotExist:
            reversed_by = None
        return transaction_payload(obj, entries=obj.entries.all(), reversed_by=reversed_by)


class StatementEntryOutput(serializers.ModelSerializer):
    transaction = serializers.CharField(source="transaction_id")

    class Meta:
        model = LedgerEntry
        fields = ["id", "transaction", "direction", "amount", "currency", "balance_after", "sequence", "created_at"]
        read_only_fields = fields


class HoldCreateInput(serializers.Serializer):
    account = StrictCharField(max_length=40)
    amount = AmountField()
    expires_in = StrictIntegerField(required=False, min_value=1, help_text="seconds from now")
    expires_at = serializers.DateTimeField(required=False)
    reference = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    metadata = MetadataField()

    def validate(self, attrs):
        from datetime import timedelta

        from django.conf import settings
        from django.utils import timezone

        maximum = settings.ZENTRA_HOLD_MAX_SECONDS
        if ("expires_in" in attrs) == ("expires_at" in attrs):
            raise serializers.ValidationError({"expires_in": "Give exactly one of expires_in and expires_at."})
        now = timezone.now()
        if "expires_in" in attrs:
            if attrs["expires_in"] > maximum:
                raise serializers.ValidationError({"expires_in": f"At most {maximum} seconds."})
            attrs["expires_at"] = now + timedelta(seconds=attrs.pop("expires_in"))
        elif attrs["expires_at"] <= now:
            raise serializers.ValidationError({"expires_at": "Must be in the future."})
        elif attrs["expires_at"] > now + timedelta(seconds=maximum):
            raise serializers.ValidationError({"expires_at": f"At most {maximum} seconds from now."})
        return attrs


class HoldCaptureInput(serializers.Serializer):
    amount = AmountField(required=False)
    destination_account = StrictCharField(max_length=40)
    final = StrictBooleanField(required=False, default=True)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class HoldReleaseInput(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class HoldTransactionsOutput(serializers.Serializer):
    created = serializers.CharField()
    captures = serializers.ListField(child=serializers.CharField())
    release = serializers.CharField(allow_null=True)


class HoldOutput(serializers.ModelSerializer):
    object = serializers.CharField(default="hold")
    account = serializers.CharField(source="account_id")
    status = serializers.ChoiceField(choices=["active", "captured", "released", "expired"])
    transactions = HoldTransactionsOutput()
    resolved_by = serializers.CharField(allow_null=True)
    resolution_reason = serializers.CharField(allow_null=True)

    class Meta:
        model = Hold
        fields = ["id", "object", "account", "amount", "currency", "captured_amount", "released_amount", "status",
                  "expires_at", "reference", "metadata", "source_request_id", "transactions", "resolved_by",
                  "resolution_reason", "created_at", "resolved_at"]
        read_only_fields = fields

    def to_representation(self, obj):
        return hold_payload(obj)
