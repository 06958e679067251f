"""Strict input fields: JSON types are taken as they are, never coerced.

DRF's stock fields accept "12" for an integer, 1.0 for an integer, "true" for a boolean and
42 for a string. Money must not: a float, a string or a boolean where an amount belongs is a
400, whatever its value.
"""

import json
import math
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from ledger.models import MAX_AMOUNT
from zentra.errors import ValidationFailed

METADATA_MAX_BYTES = 8 * 1024
METADATA_MAX_DEPTH = 32


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        # The limit is on what was sent, as the OpenAPI document says: DRF measures after
        # trimming, so 501 characters with a space at the end would pass a limit of 500.
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be a JSON boolean."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be a JSON integer."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class AmountField(StrictIntegerField):
    """A positive amount in minor units: 0 < amount <= 2^63-1."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_AMOUNT)
        super().__init__(**kwargs)


def _unstorable(value, depth: int = 0) -> str | None:
    """Why PostgreSQL's jsonb would refuse `value` (turning a client's mistake into a 500), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "nul"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\ud800"): JSON can spell it, UTF-8 cannot
            return "surrogate"
        return None
    if isinstance(value, float) and not math.isfinite(value):  # 1e999 parses as inf; jsonb has no inf
        return "not_finite"
    if isinstance(value, (dict, list)):
        if depth >= METADATA_MAX_DEPTH:
            return "too_deep"
        items = [part for pair in value.items() for part in pair] if isinstance(value, dict) else value
        for item in items:
            problem = _unstorable(item, depth + 1)
            if problem:
                return problem
    return None


class MetadataField(serializers.JSONField):
    """A JSON object of at most 8 KiB, keys as strings."""

    default_error_messages = {"not_object": "Must be a JSON object.",
                              "too_large": f"Must be at most {METADATA_MAX_BYTES} bytes as JSON.",
                              "too_deep": f"Must nest at most {METADATA_MAX_DEPTH} levels deep.",
                              "nul": "Must not contain NUL characters.",
                              "surrogate": "Must not contain unpaired surrogate characters.",
                              "not_finite": "Numbers must be finite."}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", dict)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_object")
        problem = _unstorable(data)
        if problem:
            self.fail(problem)
        if len(json.dumps(data, separators=(",", ":"))) > METADATA_MAX_BYTES:
            self.fail("too_large")
        return data


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class ReasonInput(serializers.Serializer):
    """Why: an optional reason kept with the change as evidence."""

    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


def parse_instant(raw: str | None, field: str, *, clamp: bool = False) -> datetime | None:
    """A query parameter holding an ISO 8601 timestamp with a time zone, in UTC; None if absent.
    Present but empty or malformed: 400 naming the field. An instant before year 1 or after 9999
    in UTC is clamped to the first or last Python holds when `clamp`, refused otherwise."""
    if raw is None:
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))  # a bare "+" in a query string arrives as a space
    except ValueError:  # well formed but impossible, such as month 13
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationFailed(f"{field} must be an ISO 8601 timestamp with a time zone",
                               errors=[{"field": field, "message": "ISO 8601 timestamp with time zone expected."}])
    # In UTC: PostgreSQL refuses offsets beyond 15:59 (ISO 8601 allows 23:59).
    try:
        return value.astimezone(UTC)
    except OverflowError:
        if not clamp:
            raise ValidationFailed(f"{field} is out of range", errors=[
                {"field": field, "message": "Out of range."}]) from None
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)
