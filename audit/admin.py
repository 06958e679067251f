from django import forms
from django.contrib import admin
from django.db.models import Q
from django.utils import timezone
from django.utils.timezone import localtime

from backoffice.templatetags.zentra import actor_name, idlink, json_table, linkify
from tenants.admin_base import EstimatedCountPaginator, TenantScopedAdmin
from tenants.admin_filters import RecentFilter, fixed_choices_filter
from tenants.roles import EVIDENCE, OPERATE

from .approvals import approval_actions
from .models import AccessDenial, Approval, RequestRecord
from .services.approvals import approval_approve, approval_reject

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


class DecisionForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Why: kept with the decision.")


class ApprovalStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("waiting", "Waiting for a decision"), *[(s, s.capitalize()) for s in Approval.STATUSES[1:]]]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(status=Approval.PENDING, expires_at__gt=timezone.now())
        if self.value():
            return queryset.filter(status=self.value())
        return queryset


@admin.register(Approval)
class ApprovalAdmin(TenantScopedAdmin):
    """Maker-checker: what waits for a second person, and who decided. Approving runs the action
    through its own service (audit/services/approvals.py); the proposer cannot decide their own."""

    list_display = ["id", "action_label", "summary_shown", "status_shown", "proposed_by_name", "decided_by_name",
                    "expires_at"]
    list_filter = [ApprovalStateFilter, "action"]
    search_fields = ["=id", "=target", "summary"]
    readonly_fields = ["id", "tenant_id", "action_label", "summary_shown", "target_link", "payload_table",
                       "status_shown", "proposed_by_name", "created_at", "expires_at", "decided_by_name",
                       "decided_at", "reason", "result_link"]
    fields = readonly_fields
    actions = ["approve", "reject"]

    @admin.display(description="action", ordering="action")
    def action_label(self, obj):
        registered = approval_actions().get(obj.action)
        return registered.label if registered else obj.action

    @admin.display(description="what it does")
    def summary_shown(self, obj):
        return linkify(obj.summary)

    @admin.display(description="about")
    def target_link(self, obj):
        return linkify(obj.target) if obj.target else "—"

    @admin.display(description="made")
    def result_link(self, obj):
        return idlink(obj.result) if obj.result else "—"

    @admin.display(description="payload")
    def payload_table(self, obj):
        return json_table(obj.payload)

    @admin.display(description="status", ordering="status")
    def status_shown(self, obj):
        if obj.status == Approval.PENDING and obj.expires_at <= timezone.now():
            return "expired (not yet swept)"
        return obj.status

    @admin.display(description="proposed by")
    def proposed_by_name(self, obj):
        return actor_name(obj.proposed_by)

    @admin.display(description="decided by")
    def decided_by_name(self, obj):
        return actor_name(obj.decided_by) if obj.decided_by else "—"

    def _decide(self, request, queryset, *, verb: str, decide):
        # Any operator of the tenant but the proposer decides (a period close is proposed by an
        # owner, so an owner and a second person have both looked at it).
        return self.confirm_and_apply(
            request, queryset, title=f"{verb.capitalize()} proposals", verb=verb, perm=OPERATE,
            form_class=DecisionForm,
            apply=lambda approval, values, actor: self._decided(decide(
                tenant_id=approval.tenant_id, approval_id=approval.pk, actor=actor, reason=values["reason"])))

    @staticmethod
    def _decided(approval: Approval) -> str:
        made = f", made {approval.result}" if approval.result else ""
        return f"{approval.status.capitalize()} {approval.id}: {approval.summary}{made}"

    @admin.action(description="Approve (run the action)", permissions=["operate"])
    def approve(self, request, queryset):
        return self._decide(request, queryset, verb="approve", decide=approval_approve)

    @admin.action(description="Reject", permissions=["operate"])
    def reject(self, request, queryset):
        return self._decide(request, queryset, verb="reject", decide=approval_reject)
