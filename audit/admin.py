from django.contrib import admin
from django.db.models import Q

from tenants.admin_base import TenantScopedAdmin
from tenants.roles import EVIDENCE

from .models import AccessDenial, RequestRecord


class EvidenceAdmin(TenantScopedAdmin):
    """Read-only evidence for owners and compliance reviewers."""

    view_perm = EVIDENCE

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(AccessDenial)
class AccessDenialAdmin(EvidenceAdmin):
    list_display = ["created_at", "actor_name", "role", "action", "target", "reason"]
    search_fields = ["actor", "actor_label", "target", "request_id"]
    date_hierarchy = "created_at"

    def scope(self, request, queryset, perm=None):
        # A tenant's compliance sees refusals by its own people (whichever tenant they acted
        # in) and attempts on its own objects.
        ids = self.allowed_tenant_ids(request, perm or self.view_perm)
        if ids is None:
            return queryset
        return queryset.filter(Q(tenant_id__in=ids) | Q(target_tenant_id__in=ids)
                               | Q(actor_tenant_ids__overlap=list(ids)))

    def tenant_of(self, obj):
        return obj.target_tenant_id or obj.tenant_id


@admin.register(RequestRecord)
class RequestRecordAdmin(EvidenceAdmin):
    list_display = ["created_at", "request_id", "actor_name", "method", "path", "status", "duration_ms"]
    list_filter = ["method", "status", "idempotent_replay"]
    search_fields = ["request_id", "path", "idempotency_key", "actor"]
    date_hierarchy = "created_at"
