"""The OpenAPI document describes what the edge does, not only what each view declares."""

from __future__ import annotations

import inspect

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc
from drf_spectacular.utils import OpenApiParameter

from .idempotency import HEADER

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER, str, OpenApiParameter.HEADER, required=True,
    description="1..255 printable ASCII characters, bare or as an RFC 8941 quoted string; kept 24 hours "
                "per tenant. A retry with the same key and body replays the first answer.")


class ZentraAutoSchema(AutoSchema):
    def get_override_parameters(self):
        from .views import TenantAPIView

        parameters = super().get_override_parameters()
        # TenantAPIView.initial refuses every POST without the key: the contract must say so.
        if self.method == "POST" and isinstance(self.view, TenantAPIView):
            parameters = [*parameters, IDEMPOTENCY_KEY_PARAMETER]
        return parameters

    def get_description(self) -> str:
        # Only the view's own docstrings: inherited ones describe the edge's internals.
        handler = getattr(self.view, self.method.lower(), None)
        own = self.view.__class__.__dict__.get("__doc__")
        return get_doc(handler) or inspect.cleandoc(own or "")
