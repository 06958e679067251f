"""Input shapes of the back office API (outputs are the public shapes of backoffice/shapes.py)."""

from rest_framework import serializers

EXPORT_RESOURCE_PATTERN = r"^(acct|pi|hold)_[0-9A-Za-z]+$"


class EvidenceExportCreateInput(serializers.Serializer):
    resource = serializers.RegexField(
        EXPORT_RESOURCE_PATTERN, max_length=40,
        error_messages={"invalid": "Must be an account (acct_...), payment intent (pi_...) or hold (hold_...) id."},
        help_text="The account, payment intent or hold the export is about.")


# `from` is a Python keyword: the field is declared by name.
EvidenceExportCreateInput._declared_fields["from"] = serializers.DateTimeField(
    required=False, allow_null=True, default=None,
    help_text="Start of the period (inclusive), ISO 8601; absent or null: since the resource began. Must be before "
              "`to`.")
EvidenceExportCreateInput._declared_fields["to"] = serializers.DateTimeField(
    required=False, allow_null=True, default=None,
    help_text="End of the period (exclusive), ISO 8601, not in the future; absent or null: now.")
