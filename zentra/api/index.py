"""`GET /v1/`: where a client starts. The conventions every endpoint follows, where the full
contract is, and every operation, read from the same OpenAPI document `/v1/openapi.json`
serves, so the index cannot drift from the endpoints."""

from __future__ import annotations

from functools import cache
from typing import Literal, TypedDict

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

CONVENTIONS = {
    "base_path": "/v1/. JSON in, JSON out. Timestamps are ISO 8601 UTC.",
    "authentication": "Authorization: Bearer <api key>. A key belongs to one tenant: every request enters with "
                      "tenant scope. Missing or invalid key: 401; a read-only key writing: 403; another tenant's "
                      "object: 404, exactly as if it did not exist.",
    "idempotency": "Every POST needs an Idempotency-Key header (1..255 characters). The same key with the same "
                   "request replays the stored answer (Idempotent-Replayed: true) for 24 hours; with another "
                   "request it is 422 idempotency_key_reused.",
    "request_ids": "Every response carries X-Request-Id (req_...), the key of the request's evidence; a client's "
                   "own X-Request-Id is echoed in X-Client-Request-Id.",
    "rate_limits": "Every API key has a budget per second and per minute; failed authentication and what needs no "
                   "key are budgeted per client address. Every response carries RateLimit-Limit, "
                   "RateLimit-Remaining, RateLimit-Reset and RateLimit-Policy; over budget: 429 rate_limited with "
                   "Retry-After.",
    "ids": "Opaque strings with a type prefix, time-sortable: acct_, txn_, hold_, pi_, po_, evt_, we_, del_, req_.",
    "money": "amount is a JSON integer in minor units (0 < amount <= 2^63-1); currency an upper-case ISO 4217 code.",
    "lists": "?limit=1..100 (default 25) and ?starting_after=<id> (an unknown one is 404); {\"object\": \"list\", "
             "\"data\": [...], \"has_more\": bool}, newest first. Filters are query parameters named after fields.",
    "errors": "RFC 9457 problem details (application/problem+json) with a stable code and the request_id.",
}


class ApiOperation(TypedDict):
    method: str
    path: str
    operation_id: str
    summary: str


class ApiIndexBody(TypedDict):
    """Where a client starts: the conventions, the contract, and every operation."""

    object: Literal["api"]
    version: Literal["v1"]
    openapi: str
    docs: str
    conventions: dict[str, str]
    operations: list[ApiOperation]


@cache
def _operations() -> tuple[ApiOperation, ...]:
    document = SchemaGenerator().get_schema(request=None, public=True)
    found: list[ApiOperation] = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                description = (operation.get("summary") or operation.get("description") or "").strip()
                found.append({"method": method.upper(), "path": path, "operation_id": operation["operationId"],
                              "summary": description.split("\n\n")[0].replace("\n", " ")})
    return tuple(found)


class ApiIndexView(APIView):
    """The index of the API: its conventions, the OpenAPI document and the docs, and every
    operation. Needs no API key."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    edge_problem_codes = ("500",)

    @extend_schema(operation_id="api_index", responses=ApiIndexBody, auth=[])
    def get(self, request: Request) -> Response:
        body: ApiIndexBody = {"object": "api", "version": "v1", "openapi": "/v1/openapi.json", "docs": "/v1/docs",
                              "conventions": CONVENTIONS, "operations": list(_operations())}
        return Response(body)
