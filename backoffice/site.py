"""The back office's admin site: a dashboard per role as its index, the trace of any id, and
staff sign-in with a lockout and a second factor (backoffice/signin/)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from tenants.selectors import user_scope
from zentra.errors import NotFound

from .selectors.dashboard import dashboard_for
from .selectors.trace import root_kind, trace_of
from .signin import views as signin

_View = TypeVar("_View", bound=Callable[..., Any])


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
            # Not behind admin_view: the login waiting for its code is not signed in yet.
            path("login/code/", self.login_code, name="login-code"),
            path("two-factor/", self.admin_view(self.two_factor), name="two-factor"),
            path("trace/", self.admin_view(self.trace_search), name="trace-search"),
            path("trace/<str:object_id>/", self.admin_view(self.trace), name="trace"),
            *super().get_urls(),
        ]

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        """Every admin page (model pages too: ModelAdmin wraps its views with this) first asks
        for the second factor when the login has one, or when ZENTRA_REQUIRE_OTP=1."""
        checked = super().admin_view(view, cacheable)

        @wraps(checked)
        def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return signin.second_factor_gate(self, request) or checked(request, *args, **kwargs)

        return cast(_View, gated)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # A TemplateResponse or a redirect, as Django's own login answers.
        return cast(HttpResponse, signin.login(self, request, extra_context))

    @method_decorator(sensitive_post_parameters("code"))
    @method_decorator(csrf_protect)
    @method_decorator(never_cache)
    def login_code(self, request: HttpRequest) -> HttpResponse:
        return signin.login_code(self, request)

    @method_decorator(sensitive_post_parameters("code"))
    def two_factor(self, request: HttpRequest) -> HttpResponse:
        return signin.two_factor(self, request)

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
