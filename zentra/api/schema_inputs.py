"""What the input shapes accept, stated as exactly as the OpenAPI document can state it.

drf-spectacular reads the serializers' fields; these extensions add what the fields alone do
not say but the API enforces: which currencies exist, which account types a client may open,
that metadata is an object, which fields go together (exactly one of a hold's `expires_in` and
`expires_at`; an overdraft limit only with overdraft) and the parameters each kind of policy
rule takes. A request the document calls valid must not be refused as malformed
(schemathesis checks it in `make test`, tests/api/test_schemathesis.py).

What no JSON Schema can say (a time relative to now, two fields that must differ, `min <=
max`) is written in the descriptions; the schemathesis hooks (tests/schemathesis_hooks.py)
keep to the same rules when they generate valid requests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension

from ledger import currencies
from ledger.models import CLIENT_ACCOUNT_TYPES
from payments.models import PolicyRule
from payments.services.configuration import RULE_PARAMS
from webhooks.event_types import EVENT_TYPES, FAMILIES

from .fields import METADATA_MAX_BYTES, METADATA_MAX_DEPTH

CURRENCY_CODES = sorted(currencies.EXPONENTS)
# A character str.strip() keeps (U+3000 is the last space it drops), spelled out as a class:
# regex engines disagree on what \s is.
NOT_ONLY_SPACES = "[^" + "".join(char for char in map(chr, range(0x3001)) if char.isspace()) + "]"


class StrictCharFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "zentra.api.fields.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if not self.target.allow_blank and self.target.trim_whitespace:
            # The field is trimmed (str.strip) before it is checked: only spaces is as blank as nothing.
            schema["pattern"] = NOT_ONLY_SPACES
        return schema


class CurrencyFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "ledger.api.serializers.CurrencyField"
    priority = 1  # over StrictCharFieldSchema, which it subclasses

    def get_name(self) -> str:
        return "Currency"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "string", "enum": CURRENCY_CODES,
                "description": "An upper-case ISO 4217 code the ledger supports."}


class MetadataFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "zentra.api.fields.MetadataField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": {},
                "description": f"A JSON object of at most {METADATA_MAX_BYTES} bytes, nested at most "
                               f"{METADATA_MAX_DEPTH} levels deep."}


def _basic(extension: OpenApiSerializerExtension, auto_schema: Any, direction: Any) -> dict[str, Any]:
    schema: dict[str, Any] = auto_schema._map_basic_serializer(extension.target, direction)
    return schema


class AccountCreateInputSchema(OpenApiSerializerExtension):
    target_class = "ledger.api.serializers.AccountCreateInput"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = _basic(self, auto_schema, direction)
        properties = schema["properties"]
        # The system types (reserve, settlement, payout) are the services' to open: a 400.
        properties["account_type"] = {"type": "string", "enum": CLIENT_ACCOUNT_TYPES}
        properties["overdraft_limit"]["description"] = "Only with allow_overdraft: true."
        schema["example"] = {"customer": "customer_ref", "currency": "USD", "account_type": "customer",
                             "name": "Alice USD", "normal_balance": "credit", "allow_overdraft": False, "metadata": {}}
        # A limit needs allow_overdraft: true; without it the limit is absent or null.
        schema["anyOf"] = [{"required": ["allow_overdraft"], "properties": {"allow_overdraft": {"enum": [True]}}},
                           {"properties": {"overdraft_limit": {"nullable": True, "enum": [None]}}}]
        return schema


class HoldCreateInputSchema(OpenApiSerializerExtension):
    target_class = "ledger.api.serializers.HoldCreateInput"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = _basic(self, auto_schema, direction)
        maximum = settings.ZENTRA_HOLD_MAX_SECONDS
        properties = schema["properties"]
        properties["expires_in"].update(maximum=maximum, description=f"Seconds from now, 1..{maximum}.")
        properties["expires_at"]["description"] = f"In the future, at most {maximum} seconds from now."
        schema["oneOf"] = [{"required": ["expires_in"]}, {"required": ["expires_at"]}]
        schema["description"] = "Give exactly one of expires_in and expires_at."
        return schema


class TransactionCreateInputSchema(OpenApiSerializerExtension):
    target_class = "ledger.api.serializers.TransactionCreateInput"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = _basic(self, auto_schema, direction)
        # drf-spectacular drops a nested list serializer's min_length and max_length.
        entries = self.target.fields["entries"]
        schema["properties"]["entries"].update(minItems=entries.min_length, maxItems=entries.max_length)
        return schema


class PaymentIntentCreateInputSchema(OpenApiSerializerExtension):
    target_class = "payments.api.serializers.PaymentIntentCreateInput"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = _basic(self, auto_schema, direction)
        schema["properties"]["destination_account"]["description"] = "Not the source account."
        return schema


class EndpointCreateInputSchema(OpenApiSerializerExtension):
    target_class = "webhooks.api.serializers.EndpointCreateInput"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = _basic(self, auto_schema, direction)
        properties = schema["properties"]
        properties["url"].update(pattern=URL_PATTERN, description=(
            "http or https, with a host and no credentials; in production settings a host that does not "
            "resolve, or resolves to a loopback, private or link-local address, is refused."))
        properties["event_types"]["items"] = {"type": "string", "enum": EVENT_TYPE_PATTERNS}
        schema["example"] = {"url": "https://hooks.example.com/zentra", "event_types": ["hold.*", "payout.paid"],
                             "description": "ledger sync"}
        return schema


# What webhooks/addresses.py accepts as a URL's shape: scheme, a DNS name or IPv4 address, an
# optional port (0..65535), then any path, query or fragment of printable ASCII.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)"
URL_PATTERN = rf"^https?://{_LABEL}(?:\.{_LABEL})*(?::{_PORT})?(?:[/?#][!#-~]*)?$"
EVENT_TYPE_PATTERNS = ["*", *sorted(f"{family}.*" for family in FAMILIES), *sorted(EVENT_TYPES)]

_PARAM_SCHEMAS = {
    "amount": {"type": "integer", "minimum": 1},
    "amount_or_null": {"type": "integer", "minimum": 1, "nullable": True},
    "count": {"type": "integer", "minimum": 0},
    "number": {"type": "number", "minimum": 0},
    "routes": {"type": "array", "minItems": 1, "items": {"type": "string"},
               "description": "This tenant's route ids (rte_...); an unknown one answers 404."},
}


def rule_params_schema(kind: str) -> dict[str, Any]:
    spec = RULE_PARAMS[kind]
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "properties": {name: _PARAM_SCHEMAS[expected] for name, (_, expected) in spec.items()},
    }
    required = sorted(name for name, (needed, _) in spec.items() if needed)
    if required:
        schema["required"] = required
    if kind == PolicyRule.AMOUNT_LIMIT:
        schema.update(minProperties=1, description="min, max or both; min must not exceed max.")
    return schema


class PolicyRuleInputSchema(OpenApiSerializerExtension):
    target_class = "payments.api.serializers.PolicyRuleInput"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = _basic(self, auto_schema, direction)
        properties = schema["properties"]
        properties["currency"] = {"type": "string", "enum": ["", *CURRENCY_CODES],
                                  "description": "The currency the rule applies to; empty for every one."}
        properties["params"]["description"] = "The parameters of the rule's kind."
        by_kind = [{"properties": {"kind": {"enum": [kind]}, "params": rule_params_schema(kind)}}
                   for kind in PolicyRule.KIND_ORDER]
        # A new rule: its kind and the params of that kind. A change: whichever of the two it
        # gives fits the other (params alone fit some kind; whether they fit the rule's own is the
        # server's to say: 409 policy_rule_conflict).
        if "kind" in schema.get("required", ()):
            schema["oneOf"] = by_kind
            schema["example"] = {"kind": "amount_limit", "params": {"max": 5_000_000}, "currency": "USD",
                                 "description": "no single payment over 50,000.00 USD"}
        else:
            schema["anyOf"] = by_kind
            schema["example"] = {"enabled": True, "reason": "back on after the review"}
        return schema


class BreakResolveInputSchema(OpenApiSerializerExtension):
    target_class = "ledger.api.breaks.BreakResolveInput"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = _basic(self, auto_schema, direction)
        entries = self.target.fields["entries"]
        schema["properties"]["entries"].update(minItems=entries.min_length, maxItems=entries.max_length)
        # An adjusting posting names its entries (balanced per currency); the others need none.
        schema["oneOf"] = [
            {"properties": {"resolution": {"enum": ["false_positive", "provider_claim"]}}},
            {"properties": {"resolution": {"enum": ["adjusting_posting"]}}, "required": ["entries"]},
        ]
        schema["description"] = ("false_positive and provider_claim resolve at once; adjusting_posting gives the "
                                 "entries of the posting (balanced per currency), proposed for a second actor.")
        return schema
