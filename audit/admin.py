from django.contrib import admin
from django.db.models import Q
from django.utils.timezone import localtime

from backoffice.templatetags.zentra import idlink, linkify
from tenants.admin_base import EstimatedCountPaginator, TenantScopedAdmin
from tenants.admin_filters import RecentFilter, fixed_choices_filter
from tenants.roles import EVIDENCE

from .models import AccessDenial, RequestRecord

STATUS_CHOICES = [(str(code), f"{code} {label}") for code, label in (
    (200, "OK"), (201, "Created"), (400, "Bad request"), (401, "Unauthorized"), (403, "Forbidden"),
    (404, "Not found"), (409, "Conflict"), (422, "Unprocessable"), (429, "Too many requests"),
    (500, "Server error"), (503, "Unavailable"))]


class EvidenceAdmin(TenantScopedAdmin):
    """Read-only evidence for owners and compliance reviewers."""

    view_perm = EVIDENCE

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    # Refusals of callers who proved nothing are counted on one row (audit/models.py).
    @admin.display(description="times", ordering="repeat_count")
    def times(self, obj):
        if obj.repeat_count > 1 and obj.last_seen_at is not None:
            return f"{obj.repeat_count} (last {localtime(obj.last_seen_at):%Y-%m-%d %H:%M:%S})"
        return obj.repeat_count


@admin.register(AccessDenial)
class AccessDenialAdmin(EvidenceAdmin):
    paginator = EstimatedCountPaginator  # millions of rows: no full count
    show_full_result_count = False
    list_display = ["created_at", "actor_name", "role", "action", "target_link", "reason", "times"]
    list_filter = [RecentFilter]
    search_fields = ["actor", "actor_label", "target", "=request_id"]

    def scope(self, request, queryset, perm=None):
        # A tenant's compliance sees refusals by its own people (whichever tenant they acted
        # in) and attempts on its own objects.
        ids = self.allowed_tenant_ids(request, perm or self.view_perm)
        if ids is None:
            return queryset
        return queryset.filter(Q(tenant_id__in=ids) | Q(target_tenant_id__in=ids)
                               | Q(actor_tenant_ids__overlap=list(ids)))

    @admin.display(description="target", ordering="target")
    def target_link(self, obj):
        return linkify(obj.target)

    def tenant_of(self, obj):
        return obj.target_tenant_id or obj.tenant_id


@admin.register(RequestRecord)
class RequestRecordAdmin(EvidenceAdmin):
    paginator = EstimatedCountPaginator  # millions of rows: no full count
    show_full_result_count = False
    list_display = ["created_at", "request_link", "client_request_id", "actor_name", "method", "path", "status",
                    "duration_ms", "times"]
    list_filter = [
        RecentFilter,
        fixed_choices_filter("method", "method", [(m, m) for m in ("GET", "POST", "PATCH", "PUT", "DELETE")]),
        fixed_choices_filter("status", "status", STATUS_CHOICES),
        "idempotent_replay",
    ]
    # Exact ids (an index lookup on a million rows); a path matches from its start.
    search_fields = ["=request_id", "=client_request_id", "^path", "=idempotency_key", "=actor"]

    @admin.display(description="request id", ordering="request_id")
    def request_link(self, obj):
        return idlink(obj.request_id)  # its trace: what the request did
