"""Request ids, client addresses, the request-size cap, rate-limit headers and the
RequestRecord of every API call.

The server's id (`req_...`, unique) is the key of a request's evidence. A client's own
`X-Request-Id`, when it is a plain token, is kept beside it (`client_request_id`) and echoed in
`X-Client-Request-Id`; it never replaces the server's id: two clients (two tenants) may send
the same one.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time

from django.conf import settings
from django.urls import Resolver404, resolve

from audit.context import serving
from audit.services.evidence import request_record_write
from zentra.ids import new_id

from .problems import problem_json_response
from .ratelimit import Decision, charge_address

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
API_PREFIX = "/v1/"
CLIENT_REQUEST_ID_HEADER = "X-Client-Request-Id"
# One line per request, inside the request's context so it carries its id (audit/logs.py).
access_log = logging.getLogger("zentra.request")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX) or path == "/healthz"


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return ""


def client_address_of(request) -> str:
    """REMOTE_ADDR; behind ZENTRA_TRUSTED_PROXIES proxies of ours, the address the outermost one
    saw (that many entries from the right of X-Forwarded-For: what is further left, the client
    wrote itself, and believing it would give a key guesser a fresh budget per request)."""
    proxies = settings.ZENTRA_TRUSTED_PROXIES
    if proxies > 0:
        hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies and (forwarded := _address(hops[-proxies])):
            return forwarded
    return _address(request.META.get("REMOTE_ADDR", ""))


def rate_limited_response(request, decision: Decision, *, detail: str):
    return problem_json_response(request, status=429, code="rate_limited", title="Rate limited", detail=detail,
                                 headers={"Retry-After": str(decision.retry_after)})


def authenticates_by_api_key(view_func) -> bool:
    """Whether the view (a DRF view) authenticates API keys: the key's budget is charged there,
    once the key is known (zentra/api/authentication.py)."""
    view_class = getattr(view_func, "cls", None)
    if view_class is None:
        return False
    classes = getattr(view_func, "initkwargs", {}).get("authentication_classes", view_class.authentication_classes)
    return bool(classes)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        client_id = request.headers.get("X-Request-Id", "")
        request.request_id = new_id("req")
        # Anything else a client sends as its id is ignored, not refused: it is only a label.
        request.client_request_id = client_id if _CLIENT_REQUEST_ID.match(client_id) else ""
        request.client_address = client_address_of(request)
        started = time.monotonic()
        api = request.path.startswith(API_PREFIX)
        operation = f"{request.method} {request.path}" if is_api_path(request.path) else None
        with serving(request_id=request.request_id, operation=operation, client_address=request.client_address):
            response = self._too_large(request) or self.get_response(request)
            if api:
                # Whatever answered without charging a budget (a body over the cap, a refusal
                # before authentication) is counted against the address, so every API answer
                # says where its budget stands.
                decision = getattr(request, "rate_limit", None) or charge_address(request)
                for name, value in decision.headers().items():
                    response[name] = value
            duration_ms = int((time.monotonic() - started) * 1000)
            access_log.info("%s %s %s %d ms", request.method, request.path, response.status_code, duration_ms,
                            extra={"request_id": request.request_id, "client_request_id": request.client_request_id,
                                   "method": request.method, "path": request.path, "status": response.status_code,
                                   "duration_ms": duration_ms})
        response["X-Request-Id"] = request.request_id
        if request.client_request_id:
            response[CLIENT_REQUEST_ID_HEADER] = request.client_request_id
        if api and not request.path.startswith("/v1/docs"):
            self._record(request, response, started)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        """What needs no API key is budgeted per client address, before it runs."""
        if not request.path.startswith(API_PREFIX) or authenticates_by_api_key(view_func):
            return None
        decision = charge_address(request)
        if decision.allowed:
            return None
        return rate_limited_response(request, decision, detail=decision.explain("this address's"))

    def _too_large(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        # A settlement report upload is the one body allowed past the JSON limit (64 MiB by default).
        uploading_report = request.method == "POST" and request.path.rstrip("/") == "/v1/settlement_reports"
        limit = settings.ZENTRA_SETTLEMENT_REPORT_MAX_BYTES if uploading_report else settings.ZENTRA_MAX_REQUEST_BYTES
        if length > limit and is_api_path(request.path):
            return problem_json_response(request, status=413, code="payload_too_large", title="Payload too large",
                                         detail=f"Request bodies are limited to {limit} bytes; this one has {length}")
        return None

    def _record(self, request, response, started: float) -> None:
        tenant = getattr(request, "tenant", None)
        actor = getattr(request, "actor", None)
        admitted = getattr(request, "api_key", None) is not None
        status = response.status_code
        # A call that no key admitted and that was refused, or a call over its budget, costs the
        # caller nothing: such calls are counted per address, route and status, not written each.
        counted = status == 429 or (not admitted and status >= 400)
        request_record_write(
            request_id=request.request_id,
            client_request_id=request.client_request_id,
            client_address=request.client_address,
            tenant_id=tenant.id if tenant is not None else "",
            actor=str(actor) if actor is not None else "",
            method=request.method,
            path=request.path,
            status=status,
            idempotency_key=getattr(request, "idempotency_key", "") or "",
            idempotent_replay=bool(getattr(request, "idempotent_replay", False)),
            duration_ms=int((time.monotonic() - started) * 1000),
            counted_by_route=_route(request) if counted else None,
        )


def _route(request) -> str:
    """The URL pattern the path matched (`v1/providers/<str:provider_id>/events`), so that calls
    varying only an id still count as repeats; the path itself when nothing matched."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return request.path
    return match.route or request.path
