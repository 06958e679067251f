"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from zentra.errors import ZentraError

logger = logging.getLogger("zentra.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://zentra.dev/problems/"


def storable_text(text):
    """Messages may quote the client's input ('"\\u0000" is not a valid choice'). Problem bodies
    are stored for idempotent replay in jsonb, which refuses NUL and unpaired surrogates: such a
    body would fail to store and turn a 400 into a 500. Both become U+FFFD."""
    if not isinstance(text, str):
        return text
    return "".join("\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text)


def problem_body(*, status: int, code: str, title: str, detail: str, request_id: str | None,
                 errors: list[dict] | None = None) -> dict:
    body = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": storable_text(detail),
        "code": code,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = [{key: storable_text(value) for key, value in error.items()} for error in errors]
    return body


def request_id_of(request) -> str | None:
    return getattr(request, "request_id", None)


def problem_response(request, *, status: int, code: str, title: str, detail: str,
                     errors: list[dict] | None = None, headers: dict | None = None) -> Response:
    body = problem_body(status=status, code=code, title=title, detail=detail,
                        request_id=request_id_of(request), errors=errors)
    response = Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
    return response


def problem_json_response(request, *, status: int, code: str, title: str, detail: str,
                          headers: dict | None = None) -> JsonResponse:
    """For errors raised outside DRF (unknown URL, middleware refusals, 500)."""
    body = problem_body(status=status, code=code, title=title, detail=detail, request_id=request_id_of(request))
    response = JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def flatten_validation_errors(detail, prefix: str = "") -> list[dict]:
    """Turn DRF's nested error dicts into [{"field": "entries[0].amount", "message": ...}]."""
    errors: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors",):
                field = prefix or None
            elif isinstance(key, int):
                # DRF reports the items of a list (many=True, ListField) as {index: errors}.
                field = f"{prefix}[{key}]"
            else:
                field = f"{prefix}.{key}" if prefix else str(key)
            errors.extend(flatten_validation_errors(value, field or ""))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            for item in detail:
                errors.append({"field": prefix or None, "message": str(item)})
        else:
            for index, item in enumerate(detail):
                if item:
                    errors.extend(flatten_validation_errors(item, f"{prefix}[{index}]"))
    else:
        errors.append({"field": prefix or None, "message": str(detail)})
    return errors


_DRF_CODES = {
    drf_exceptions.ParseError: (400, "validation_error", "Malformed request body"),
    drf_exceptions.AuthenticationFailed: (401, "authentication_failed", "Authentication failed"),
    drf_exceptions.NotAuthenticated: (401, "authentication_failed", "Authentication failed"),
    drf_exceptions.PermissionDenied: (403, "permission_denied", "Permission denied"),
    drf_exceptions.NotFound: (404, "not_found", "Not found"),
    drf_exceptions.MethodNotAllowed: (405, "method_not_allowed", "Method not allowed"),
    drf_exceptions.NotAcceptable: (406, "not_acceptable", "Not acceptable"),
    drf_exceptions.UnsupportedMediaType: (415, "unsupported_media_type", "Unsupported media type"),
    drf_exceptions.Throttled: (429, "rate_limited", "Rate limited"),
}


def problem_exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, ZentraError):
        return problem_response(request, status=exc.status, code=exc.code, title=exc.title,
                                detail=exc.detail, errors=exc.errors, headers=exc.headers)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = flatten_validation_errors(exc.detail)
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        return problem_response(request, status=400, code="validation_error", title="Validation error",
                                detail=detail or "Invalid request", errors=errors)
    if isinstance(exc, drf_exceptions.APIException):
        status, code, title = next((known for klass, known in _DRF_CODES.items() if isinstance(exc, klass)),
                                   (exc.status_code, "error", "Error"))
        headers = {}
        if isinstance(exc, (drf_exceptions.AuthenticationFailed, drf_exceptions.NotAuthenticated)):
            headers["WWW-Authenticate"] = 'Bearer realm="zentra"'
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf_exceptions.Throttled) and wait:
            headers["Retry-After"] = str(int(wait))
        return problem_response(request, status=status, code=code, title=title, detail=str(exc.detail),
                                headers=headers)
    logger.exception("Unhandled error in %s", getattr(request, "path", "?"), exc_info=exc)
    return problem_response(request, status=500, code="internal_error", title="Internal error",
                            detail="An unexpected error occurred; quote the request id when reporting it.")
