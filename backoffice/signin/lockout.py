"""The page a locked-out sign-in gets (django-axes' AXES_LOCKOUT_CALLABLE), in the admin's frame,
and the AccessDenial every such refusal leaves."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from audit.actors import Actor
from audit.context import current_request_id
from tenants.services.denials import staff_denial_record

ACTION = "admin:login"


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict[str, Any] | None = None) -> HttpResponse:
    username = get_client_username(request, credentials) or ""
    limit = get_failure_limit(request, credentials)
    cool_off = get_cool_off(request)
    address = getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR") or "an unknown address"
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    signin_denied(request, username=username,
                  reason=f"sign-in locked: {limit} failed sign-ins from {address}"
                         + (f" within {minutes} minutes" if minutes else ""))
    context = {
        **admin.site.each_context(request),
        "title": "Sign-in paused",
        "username": username,
        "failure_limit": limit,
        "cooloff_minutes": minutes,
        # This attempt restarted the cool-off (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT).
        "retry_after": timezone.now() + cool_off if cool_off else None,
    }
    response = TemplateResponse(request, "admin/zentra/locked_out.html", context,
                                status=getattr(settings, "AXES_HTTP_RESPONSE_CODE", 429))
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response.render()


def signin_denied(request: HttpRequest, *, username: str, reason: str, action: str = ACTION) -> None:
    """One AccessDenial per refused sign-in request, naming the login when it exists (and so
    reaching the compliance reviewers of each of its tenants)."""
    if getattr(request, "_zentra_signin_denied", False):
        return
    request._zentra_signin_denied = True  # type: ignore[attr-defined]
    user = get_user_model().objects.filter(username=username).first() if username else None
    actor = Actor.for_user(user) if user is not None else Actor(kind="anonymous", id="-", label=username[:200])
    staff_denial_record(user=user, actor=actor, action=action,
                        target=f"user:{user.pk}" if user is not None else username, reason=reason,
                        request_id=getattr(request, "request_id", None) or current_request_id())
