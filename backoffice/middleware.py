"""Refusals in the back office: every one leaves evidence, and is answered inside the admin's
frame (navigation, who you are, what to do next), never as a blank page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from tenants.admin_base import deny
from tenants.selectors import roles_of

ADMIN_PREFIX = "/admin/"


class AdminRefusalMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        user = getattr(request, "user", None)
        if not request.path.startswith(ADMIN_PREFIX) or user is None or not user.is_authenticated \
                or not user.is_staff:
            return None
        if isinstance(exception, PermissionDenied):
            # One denial per refused request; pages that refuse on their own record it first.
            deny(request, action=f"admin:{(request.method or '').lower()} {request.path}"[:200],
                 reason="the user's role does not grant this page or action")
            return self._page(request, "admin/zentra/403.html", 403, "Not allowed for your role")
        if isinstance(exception, Http404):
            return self._page(request, "admin/zentra/404.html", 404, "Not found")
        return None

    @staticmethod
    def _page(request: HttpRequest, template: str, status: int, title: str) -> HttpResponse:
        context: dict[str, Any] = {**admin.site.each_context(request), "title": title,
                                   "roles": roles_of(request.user), "path": request.path}
        response = TemplateResponse(request, template, context, status=status)
        return response.render()
