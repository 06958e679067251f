from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.defaults import page_not_found, server_error
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from zentra.api.health import healthz
from zentra.api.index import ApiIndexView
from zentra.api.middleware import is_api_path
from zentra.api.problems import problem_json_response
from zentra.api.signing_keys import SigningKeysView

api_v1: list[URLPattern | URLResolver] = [
    path("", ApiIndexView.as_view(), name="api-index"),
    path("signing_keys", SigningKeysView.as_view(), name="signing-keys"),
    path("openapi.json", SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[]),
         name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi", authentication_classes=[], permission_classes=[]),
         name="api-docs"),
    path("", include("ledger.api.urls")),
    path("", include("ledger.api.break_urls")),
    path("", include("audit.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("backoffice.api.urls")),
    # Unknown API paths answer a problem, in DEBUG too (handler404 only serves DEBUG=0).
    re_path(r"^.*$", lambda request: not_found(request)),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("v1/", include(api_v1)),
    path("admin/", admin.site.urls),
]


def not_found(request, exception=None):
    if is_api_path(request.path):
        return problem_json_response(request, status=404, code="not_found", title="Not found",
                                     detail=f"No such endpoint: {request.method} {request.path}")
    return page_not_found(request, exception)


def internal_error(request):
    if is_api_path(request.path):
        return problem_json_response(request, status=500, code="internal_error", title="Internal error",
                                     detail="An unexpected error occurred; quote the request id when reporting it.")
    return server_error(request)


handler404 = not_found
handler500 = internal_error
