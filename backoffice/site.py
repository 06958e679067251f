"""The back office's admin site: a dashboard per role as its index, and the trace of any id."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse

from tenants.selectors import user_scope
from zentra.errors import NotFound

from .selectors.dashboard import dashboard_for
from .selectors.trace import root_kind, trace_of


class ZentraAdminSite(admin.AdminSite):
    site_header = "Zentra back office"
    site_title = "Zentra"
    index_title = "Dashboard"
    index_template = "admin/zentra/dashboard.html"
    # The width goes to the lists (status and amounts must not fall off a 1400 px screen);
    # navigation is the dashboard's app list, the breadcrumbs and the trace search.
    enable_nav_sidebar = False

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [
            path("trace/", self.admin_view(self.trace_search), name="trace-search"),
            path("trace/<str:object_id>/", self.admin_view(self.trace), name="trace"),
            *super().get_urls(),
        ]

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        return super().index(request, {**dashboard_for(request.user), **(extra_context or {})})

    def trace_search(self, request: HttpRequest) -> HttpResponse:
        """The search box of every page: any id a trace starts from."""
        wanted = request.GET.get("id", "").strip()
        if wanted and root_kind(wanted):
            return HttpResponseRedirect(reverse("admin:trace", args=[wanted]))
        if wanted:
            messages.error(request, f"{wanted!r} is not an id a trace starts from: give a request id (req_...), "
                                    "a payment (pi_...), hold, transaction, account, payout, event or delivery id.")
        return HttpResponseRedirect(request.META.get("HTTP_REFERER") or reverse("admin:index"))

    def trace(self, request: HttpRequest, object_id: str) -> HttpResponse:
        try:
            story = trace_of(user_scope(request.user), object_id, action="admin:trace")
        except NotFound as exc:
            raise Http404(exc.detail) from exc
        context = {**self.each_context(request), "title": f"Trace of {object_id}", "trace": story,
                   "root": object_id}
        return TemplateResponse(request, "admin/zentra/trace.html", context)
