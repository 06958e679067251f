"""Breaks, worked to the end in the back office (ledger/services/breaks.py): the queue of open
breaks, each assigned, commented and resolved as a false positive, a provider claim, or an
adjusting posting that a second person approves (Approvals). Breaks the ledger's own
verification found on an account keep it under review until resolved, by an owner."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html_join

from audit.actors import Actor
from audit.models import Approval
from backoffice.templatetags.zentra import actor_name, idlink, linkify, money
from tenants.admin_base import ReadOnlyInline, TenantScopedAdmin, deny
from tenants.roles import MANAGE, OPERATE
from zentra.errors import ZentraError

from ..models import DEBIT, BreakComment, ReconciliationBreak
from ..services.breaks import break_adjustment_propose, break_assign, break_comment, break_resolve
from ..services.postings import EntryInput

ENTRY_ROWS = 4


class ResolutionForm(forms.Form):
    resolution = forms.ChoiceField(choices=[("false_positive", "False positive: nothing is wrong"),
                                            ("provider_claim", "Provider claim: the provider must correct it")])
    note = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 4}),
                           help_text="What was found and why this resolves it: kept as evidence.")


class CommentForm(forms.Form):
    text = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 4}), label="comment")


class AdjustmentForm(forms.Form):
    """The entries of the adjusting posting (balanced per currency), and why. It posts only once a
    second person approves it."""

    note = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="Why this posting puts the break right: kept with the break and the posting.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for row in range(ENTRY_ROWS):
            self.fields[f"account_{row}"] = forms.CharField(max_length=40, required=row < 2, label=f"entry {row + 1}: "
                                                            "account", widget=forms.TextInput(attrs={"size": 34}))
            self.fields[f"direction_{row}"] = forms.ChoiceField(choices=[("debit", "debit"), ("credit", "credit")],
                                                                required=row < 2, label="direction")
            self.fields[f"amount_{row}"] = forms.IntegerField(min_value=1, required=row < 2,
                                                              label="amount (minor units)")



def entries_of(values: dict) -> list[EntryInput]:
    """The filled rows of an AdjustmentForm's cleaned values."""
    return [EntryInput(account_id=values[f"account_{row}"].strip(), direction=values[f"direction_{row}"] or DEBIT,
                       amount=values[f"amount_{row}"])
            for row in range(ENTRY_ROWS) if values.get(f"account_{row}") and values.get(f"amount_{row}")]


class OpenListFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved"), ("mine", "Open, assigned to me")]

    def queryset(self, request, queryset):
        if self.value() in ("open", "resolved"):
            return queryset.filter(status=self.value())
        if self.value() == "mine":
            return queryset.filter(status="open", assigned_to=f"user:{request.user.pk}")
        return queryset


class SourceFilter(admin.SimpleListFilter):
    title = "found by"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return [("report", "Settlement report matching"), ("ledger", "Ledger verification")]

    def queryset(self, request, queryset):
        if self.value() == "report":
            return queryset.exclude(report_id="")
        if self.value() == "ledger":
            return queryset.filter(report_id="")
        return queryset


class BreakColumns:
    """How a break reads, in its list and under its run."""

    @admin.display(description="account")
    def account(self, obj):
        return idlink(obj.account_id) if obj.account_id else "—"

    @admin.display(description="what disagreed")
    def what_disagreed(self, obj):
        return linkify(obj.detail)


class CommentInline(ReadOnlyInline):
    model = BreakComment
    fields = readonly_fields = ("created_at", "author_shown", "text")
    show_change_link = False
    verbose_name_plural = "comments"

    @admin.display(description="by")
    def author_shown(self, obj):
        return actor_name(obj.author)


@admin.register(ReconciliationBreak)
class ReconciliationBreakAdmin(BreakColumns, TenantScopedAdmin):
    list_display = ["id", "kind_shown", "reference", "expected_shown", "actual_shown", "source_link", "state",
                    "assigned"]
    list_filter = [OpenListFilter, SourceFilter, "kind"]
    search_fields = ["=id", "=account_id", "=run__id", "=report_id", "=provider_reference", "=line_id"]
    list_select_related = ["run", "tenant"]
    readonly_fields = ("id", "tenant", "kind", "state", "source_link", "line_id", "reference", "account",
                       "expected_shown", "actual_shown", "what_disagreed", "assigned", "resolution", "note",
                       "adjustment_link", "approvals", "resolved_at", "resolved_by_name", "created_at")
    fields = readonly_fields
    inlines = [CommentInline]
    actions = ["assign_to_me", "comment", "resolve", "propose_adjustment"]

    @admin.display(description="kind", ordering="kind")
    def kind_shown(self, obj):
        return obj.kind.replace("_", " ")

    @admin.display(description="reference")
    def reference(self, obj):
        return obj.provider_reference or (idlink(obj.account_id) if obj.account_id else obj.currency or "—")

    @admin.display(description="ledger says")
    def expected_shown(self, obj):
        return money(obj.expected, obj.currency) if obj.expected is not None and obj.currency else "—"

    @admin.display(description="provider says")
    def actual_shown(self, obj):
        return money(obj.actual, obj.currency) if obj.actual is not None and obj.currency else "—"

    @admin.display(description="found by")
    def source_link(self, obj):
        return idlink(obj.report_id) if obj.report_id else idlink(obj.run_id)

    @admin.display(description="state", ordering="status")
    def state(self, obj):
        if obj.status == ReconciliationBreak.RESOLVED:
            return f"resolved ({obj.get_resolution_display() or 'resolved'})"
        return "open: account under review" if obj.account_id else "open"

    @admin.display(description="assigned to")
    def assigned(self, obj):
        return obj.assigned_to_label or "—"

    @admin.display(description="adjusting posting")
    def adjustment_link(self, obj):
        return idlink(obj.adjustment_transaction_id) if obj.adjustment_transaction_id else "—"

    @admin.display(description="approvals")
    def approvals(self, obj):
        found = Approval.objects.filter(tenant_id=obj.tenant_id, target=obj.pk).order_by("-id")
        return format_html_join(", ", "{} ({})", ((idlink(a.pk), a.status) for a in found)) or "—"

    @admin.display(description="resolved by")
    def resolved_by_name(self, obj):
        return actor_name(obj.resolved_by) if obj.resolved_by else "—"

    def _may_resolve(self, request, found) -> None:
        """A break the ledger's verification found on an account is an owner's to resolve."""
        if found.account_id and not self._allowed(request, MANAGE, found):
            deny(request, action="admin:resolve ledger break", target=found.pk, target_tenant_id=found.tenant_id,
                 reason="breaks of the ledger's own verification are resolved by owners")
            raise OwnersOnly(f"Break {found.pk} was found by the ledger's own verification: an owner resolves it")

    @admin.action(description="Assign to me", permissions=["operate"])
    def assign_to_me(self, request, queryset):
        me = Actor.for_user(request.user)
        return self.confirm_and_apply(
            request, queryset, title="Assign breaks to me", verb="assign",
            form_class=forms.Form,
            apply=lambda found, values, actor: break_assign(tenant=found.tenant, break_id=found.pk, assignee=me,
                                                            actor=actor))

    @admin.action(description="Comment…", permissions=["operate"])
    def comment(self, request, queryset):
        return self.confirm_and_apply(
            request, queryset, title="Comment on breaks", verb="comment on", form_class=CommentForm,
            apply=lambda found, values, actor: break_comment(tenant=found.tenant, break_id=found.pk,
                                                             text=values["text"], actor=actor))

    @admin.action(description="Resolve (false positive or provider claim)…", permissions=["operate"])
    def resolve(self, request, queryset):
        def apply(found, values, actor):
            self._may_resolve(request, found)
            return break_resolve(tenant=found.tenant, break_id=found.pk, actor=actor,
                                 resolution=values["resolution"], note=values["note"])

        return self.confirm_and_apply(request, queryset, title="Resolve breaks", verb="resolve",
                                      form_class=ResolutionForm, apply=apply)

    @admin.action(description="Propose an adjusting posting (a second person approves)…", permissions=["operate"])
    def propose_adjustment(self, request, queryset):
        def apply(found, values, actor):
            self._may_resolve(request, found)
            return break_adjustment_propose(tenant=found.tenant, break_id=found.pk, entries=entries_of(values),
                                            note=values["note"], actor=actor)

        return self.confirm_and_apply(request, queryset, title="Propose an adjusting posting",
                                      verb="propose an adjusting posting for", form_class=AdjustmentForm, apply=apply)

    def has_operate_permission(self, request, obj=None):
        return self._allowed(request, OPERATE, obj)


class OwnersOnly(ZentraError):
    status = 403
    code = "permission_denied"
    title = "Permission denied"
