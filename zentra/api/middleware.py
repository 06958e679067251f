"""Request ids, the request-size cap and the RequestRecord of every API call."""

from __future__ import annotations

import logging
import re
import time

from django.conf import settings

from audit.context import serving
from audit.services.evidence import request_record_write
from zentra.ids import new_id

from .problems import problem_json_response

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
API_PREFIX = "/v1/"
# One line per request, inside the request's context so it carries its id (audit/logs.py).
access_log = logging.getLogger("zentra.request")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX) or path == "/healthz"


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        client_id = request.headers.get("X-Request-Id", "")
        request.request_id = client_id if _CLIENT_REQUEST_ID.match(client_id) else new_id("req")
        started = time.monotonic()
        operation = f"{request.method} {request.path}" if is_api_path(request.path) else None
        with serving(request_id=request.request_id, operation=operation):
            response = self._too_large(request) or self.get_response(request)
            duration_ms = int((time.monotonic() - started) * 1000)
            access_log.info("%s %s %s %d ms", request.method, request.path, response.status_code, duration_ms,
                            extra={"method": request.method, "path": request.path, "status": response.status_code,
                                   "duration_ms": duration_ms})
        response["X-Request-Id"] = request.request_id
        if request.path.startswith(API_PREFIX) and not request.path.startswith("/v1/docs"):
            self._record(request, response, started)
        return response

    def _too_large(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.ZENTRA_MAX_REQUEST_BYTES
        if length > limit and is_api_path(request.path):
            return problem_json_response(request, status=413, code="payload_too_large", title="Payload too large",
                                         detail=f"Request bodies are limited to {limit} bytes; this one has {length}")
        return None

    def _record(self, request, response, started: float) -> None:
        tenant = getattr(request, "tenant", None)
        actor = getattr(request, "actor", None)
        request_record_write(
            request_id=request.request_id,
            tenant_id=tenant.id if tenant is not None else "",
            actor=str(actor) if actor is not None else "",
            method=request.method,
            path=request.path,
            status=response.status_code,
            idempotency_key=getattr(request, "idempotency_key", "") or "",
            idempotent_replay=bool(getattr(request, "idempotent_replay", False)),
            duration_ms=int((time.monotonic() - started) * 1000),
        )
