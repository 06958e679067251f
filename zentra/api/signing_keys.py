"""`GET /v1/signing_keys`: the service's Ed25519 public keys, so anyone can verify a signed
checkpoint or evidence export offline. Public keys are not secrets: no API key needed."""

from __future__ import annotations

from typing import Literal, TypedDict

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from zentra.keys import signing_keys


class SigningKeyBody(TypedDict):
    """A public key: `public_key` is base64 of its 32 raw bytes; `kid` the first 16 hex digits of
    their SHA-256, as named by every checkpoint and manifest it signed."""

    object: Literal["signing_key"]
    kid: str
    algorithm: Literal["Ed25519"]
    public_key: str
    status: Literal["current", "retired"]


class SigningKeyListBody(TypedDict):
    object: Literal["list"]
    data: list[SigningKeyBody]
    has_more: bool


class SigningKeysView(APIView):
    """The public keys of the service's signing key and of the retired ones that still verify
    what they signed; the current one first."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    edge_problem_codes = ("500",)

    @extend_schema(operation_id="signing_keys_list", responses=SigningKeyListBody, auth=[])
    def get(self, request: Request) -> Response:
        data = [{"object": "signing_key", **key} for key in signing_keys().listing()]
        return Response({"object": "list", "data": data, "has_more": False})
