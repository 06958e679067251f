"""The OpenAPI document: generated from the public shapes, and honest about errors.

- A response declared as a shape (a TypedDict of an app's `shapes.py`) becomes a component of
  that name, built from the TypedDict itself: the same definition renders the response, the
  event payload and the webhook body (zentra/shapes.py). `ListOf(Shape)` is the list envelope.
- Every operation lists the problem responses it can give, with the Problem schema: the ones
  the edge itself answers (validation, authentication, read-only keys, unknown ids, the
  Idempotency-Key gate, body size and type) and the domain errors a view declares with
  `@problems(...)`.
- Every operation may answer 429 `rate_limited` (with Retry-After): every request is charged to
  a budget, the key's or the client address's (zentra/api/ratelimit.py).
- Every response carries `X-Request-Id` and the RateLimit headers, and `X-Client-Request-Id`
  when the client sent its own id; the contract check (tests/contract.py) validates each
  response the test suite produces against this document, headers included.
- Inputs say what the API enforces, so a request the document calls valid is never refused as
  malformed (schema_inputs.py), and answers link to what can be done with the objects they
  carry (schema_links.py); schemathesis checks both (tests/api/test_schemathesis.py).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints, is_typeddict

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, get_doc
from drf_spectacular.utils import OpenApiParameter
from rest_framework.views import APIView

from zentra.errors import ZentraError
from zentra.shapes import Timestamp

from . import schema_inputs  # noqa: F401  (registers the input shapes' extensions)
from .idempotency import HEADER, KEY_PATTERN
from .problems import PROBLEM_CONTENT_TYPE

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER, {"type": "string", "pattern": KEY_PATTERN}, OpenApiParameter.HEADER, required=True,
    description="1..255 printable ASCII characters, bare or as an RFC 8941 quoted string; kept 24 hours "
                "per tenant. A retry with the same key and body replays the first answer.")

F = TypeVar("F", bound=Callable[..., Any])


class ListOf:
    """A list response: `{"object": "list", "data": [Shape, ...], "has_more": bool}`."""

    def __init__(self, shape: type) -> None:
        self.shape = shape


def problems(*errors: type[ZentraError]) -> Callable[[F], F]:
    """Declare the domain errors an operation may answer, beyond those of the edge."""

    def mark(handler: F) -> F:
        handler._zentra_problems = errors  # type: ignore[attr-defined]
        return handler

    return mark


# --- shapes to schemas ------------------------------------------------------------------------

def shape_name(shape: type) -> str:
    name = shape.__name__
    return name[: -len("Body")] if name.endswith("Body") and len(name) > 4 else name


class ShapeSchemas:
    """Turns TypedDicts into component schemas, registering nested ones as they are met."""

    def __init__(self, register: Callable[[str, type, dict[str, Any]], dict[str, Any]]) -> None:
        self.register = register

    def ref(self, shape: type) -> dict[str, Any]:
        hints = get_type_hints(shape)
        required = sorted(shape.__required_keys__)  # type: ignore[attr-defined]
        schema: dict[str, Any] = {"type": "object", "properties": {k: self.of(v) for k, v in hints.items()},
                                  "required": required, "additionalProperties": False}
        doc = inspect.getdoc(shape)
        if doc and shape.__doc__ is not None and "TypedDict" not in doc:
            schema["description"] = doc
        return self.register(shape_name(shape), shape, schema)

    def of(self, hint: Any) -> dict[str, Any]:
        if hint is Timestamp:
            return {"type": "string", "format": "date-time"}
        if hint is Any:
            return {}
        if is_typeddict(hint):
            return self.ref(hint)
        basic = {str: {"type": "string"}, int: {"type": "integer"}, bool: {"type": "boolean"},
                 float: {"type": "number"}}
        if hint in basic:
            return dict(basic[hint])
        origin, args = get_origin(hint), get_args(hint)
        if origin is Literal:
            kinds = {type(a) for a in args}
            schema: dict[str, Any] = {"enum": list(args)}
            if kinds == {str}:
                schema["type"] = "string"
            return schema
        if origin in (typing.Union, types.UnionType):
            present = [a for a in args if a is not type(None)]
            nullable = len(present) != len(args)
            schema = self.of(present[0]) if len(present) == 1 else {"oneOf": [self.of(a) for a in present]}
            if nullable:
                schema = {"allOf": [schema], "nullable": True} if "$ref" in schema else {**schema, "nullable": True}
                if "enum" in schema:  # an enum lists every value it allows, null included (OpenAPI 3.0)
                    schema["enum"] = [*schema["enum"], None]
            return schema
        if origin is list:
            return {"type": "array", "items": self.of(args[0])}
        if origin is dict:
            value = args[1] if len(args) == 2 else Any
            return {"type": "object", "additionalProperties": self.of(value) if value is not Any else {}}
        raise TypeError(f"no OpenAPI mapping for {hint!r}")


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable code (validation_error, ...)."},
        "request_id": {"type": "string", "nullable": True},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": {"type": "string", "nullable": True}, "message": {"type": "string"}}}},
    },
}

# What the edge itself answers, for every operation it applies to (code -> the problem codes).
EDGE_PROBLEMS = {
    "400": "validation_error (a malformed body, filter or limit)",
    "401": "authentication_failed",
    "403": "permission_denied (a read-only API key asking to write); system_account (freezing, closing or posting "
           "by hand to a reserve, settlement or payout account)",
    "404": "not_found (no such object for this tenant, whether named by the path, a filter or a list's "
           "starting_after; another tenant's object answers the same)",
    "409": "idempotency_request_in_progress, idempotency_outcome_unknown",
    "413": "payload_too_large",
    "415": "unsupported_media_type",
    "422": "idempotency_key_reused",
    "429": "rate_limited (over the API key's budget, or the client address's for failed authentication and "
           "what needs no key; Retry-After says when to retry)",
    "500": "internal_error (quote the request id)",
}
POST_EDGE_CODES = ("400", "401", "403", "404", "409", "413", "415", "422", "500")
READ_EDGE_CODES = ("400", "401", "404", "500")
DELETE_EDGE_CODES = ("400", "401", "403", "404", "500")

REQUEST_ID_HEADER: dict[str, Any] = {"X-Request-Id": {"schema": {"type": "string"}, "required": True,
                                      "description": "The server's id of this request (req_...), the key of its "
                                                     "evidence."}}
# On every response, beside the request id.
COMMON_HEADERS: dict[str, Any] = {
    **REQUEST_ID_HEADER,
    "X-Client-Request-Id": {"schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                            "description": "The client's own X-Request-Id (up to 64 characters A-Z a-z 0-9 _ -), "
                                           "echoed and kept with the request's evidence; another value is ignored."},
    "RateLimit-Limit": {"schema": {"type": "integer", "minimum": 1}, "required": True,
                        "description": "Requests allowed in the budget's window closest to running out (the API "
                                       "key's; the client address's for failed authentication and for what needs "
                                       "no key)."},
    "RateLimit-Remaining": {"schema": {"type": "integer", "minimum": 0}, "required": True,
                            "description": "Requests left in that window."},
    "RateLimit-Reset": {"schema": {"type": "integer", "minimum": 1}, "required": True,
                        "description": "Seconds until that window starts over."},
    "RateLimit-Policy": {"schema": {"type": "string"}, "required": True,
                         "description": "Every window of the budget, as `limit;w=seconds`, comma-separated "
                                        "(e.g. `100;w=1, 6000;w=60`)."},
}
RETRY_AFTER_HEADER: dict[str, Any] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "required": True,
                                      "description": "Seconds until the budget that ran out allows a request."}}
REPLAYED_HEADER: dict[str, Any] = {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]},
                                           "description": "Present when the stored answer of an earlier request "
                                                          "with the same Idempotency-Key is replayed."}}


class ZentraAutoSchema(AutoSchema):
    def get_override_parameters(self) -> list[Any]:
        parameters = super().get_override_parameters()
        # TenantAPIView.initial refuses every POST without the key: the contract must say so.
        if self.method == "POST" and getattr(self.view, "requires_idempotency_key", False):
            parameters = [*parameters, IDEMPOTENCY_KEY_PARAMETER]
        return parameters

    def get_description(self) -> str:  # type: ignore[override]  # drf-spectacular's signature, not DRF's
        # Only the view's own docstrings: inherited ones describe the edge's internals.
        handler = getattr(self.view, self.method.lower(), None)
        own = self.view.__class__.__dict__.get("__doc__")
        return get_doc(handler) or inspect.cleandoc(own or "")

    # --- responses -----------------------------------------------------------------------------

    def _register_shape(self, name: str, shape: type, schema: dict[str, Any]) -> dict[str, Any]:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=shape, schema=schema)
        self.registry.register_on_missing(component)
        return component.ref

    def _problem_ref(self) -> dict[str, Any]:
        component = ResolvedComponent(name="Problem", type=ResolvedComponent.SCHEMA, object="Problem",
                                      schema=PROBLEM_SCHEMA)
        self.registry.register_on_missing(component)
        return component.ref

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        declared: Any = self.get_response_serializers()
        if not isinstance(declared, dict):
            declared = {"201" if self._is_create_operation() else "200": declared}
        shapes = ShapeSchemas(self._register_shape)
        headers: dict[str, Any] = dict(COMMON_HEADERS)
        if self.method == "POST":
            headers.update(REPLAYED_HEADER)
        responses: dict[str, Any] = {}
        for code, spec in declared.items():
            code = str(code)
            if isinstance(spec, ListOf):
                item = shapes.ref(spec.shape)
                envelope = {"type": "object", "required": ["object", "data", "has_more"],
                            "additionalProperties": False,
                            "properties": {"object": {"type": "string", "enum": ["list"]},
                                           "data": {"type": "array", "items": item}, "has_more": {"type": "boolean"}}}
                name = f"{shape_name(spec.shape)}List"
                schema = self._register_shape(name, f"list:{name}", envelope)  # type: ignore[arg-type]
                responses[code] = {"description": f"A page of {shape_name(spec.shape)} objects",
                                   "content": {"application/json": {"schema": schema}}}
            elif isinstance(spec, type) and is_typeddict(spec):
                responses[code] = {"description": shape_name(spec),
                                   "content": {"application/json": {"schema": shapes.ref(spec)}}}
            elif spec is None:
                responses[code] = {"description": "No response body"}
            else:
                responses[code] = self._get_response_for_code(spec, code, direction=direction)
            responses[code]["headers"] = {**headers, **responses[code].get("headers", {})}
        for code, description in self._problem_responses().items():
            responses.setdefault(code, {
                "description": description,
                "headers": {**COMMON_HEADERS, **(RETRY_AFTER_HEADER if code == "429" else {})},
                "content": {PROBLEM_CONTENT_TYPE: {"schema": self._problem_ref()}},
            })
        return responses

    def _problem_responses(self) -> dict[str, str]:
        codes: dict[str, list[str]] = {}
        edge = getattr(self.view, "edge_problem_codes", None)
        if edge is None:
            edge = {"POST": POST_EDGE_CODES, "DELETE": DELETE_EDGE_CODES}.get(self.method, READ_EDGE_CODES)
        for status in (*edge, "429"):
            codes.setdefault(status, []).append(EDGE_PROBLEMS[status])
        handler = getattr(self.view, self.method.lower(), None)
        for error in getattr(handler, "_zentra_problems", ()):
            codes.setdefault(str(error.status), []).append(error.code)
        if self.method == "POST" and isinstance(self.view, APIView) and not self._has_request_body():
            codes.pop("415", None)
        return {status: "; ".join(dict.fromkeys(found)) for status, found in sorted(codes.items())}

    def _has_request_body(self) -> bool:
        return self.get_request_serializer() is not None
