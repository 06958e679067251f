"""Breaks found by ledger verification, and their resolution by an owner (docs/security.md).

An open break keeps its account under review (debits refused); resolving takes an owner and a
reason, both kept in the break's history."""

from django import forms
from django.contrib import admin

from backoffice.templatetags.zentra import idlink, linkify
from tenants.admin_base import TenantScopedAdmin
from tenants.roles import MANAGE

from ..models import ReconciliationBreak
from ..services.breaks import break_resolve


class ResolutionForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 4}),
                             help_text="What was found and why the account may take debits again: kept as evidence.")


class OpenListFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


class BreakColumns:
    """How a break reads, in its list and under its run."""

    @admin.display(description="account")
    def account(self, obj):
        return idlink(obj.account_id) if obj.account_id else "—"

    @admin.display(description="what disagreed")
    def what_disagreed(self, obj):
        return linkify(obj.detail)


@admin.register(ReconciliationBreak)
class ReconciliationBreakAdmin(BreakColumns, TenantScopedAdmin):
    list_display = ["id", "kind", "account", "what_disagreed", "run_link", "state", "tenant"]
    list_filter = [OpenListFilter, "kind"]
    search_fields = ["=account_id", "=run__id", "kind"]
    list_select_related = ["run", "tenant"]
    readonly_fields = ("id", "tenant", "run_link", "kind", "account", "currency", "what_disagreed", "state",
                       "resolved_at", "resolved_by", "resolution")
    fields = readonly_fields
    actions = ["resolve"]

    @admin.display(description="run")
    def run_link(self, obj):
        return idlink(obj.run_id)

    @admin.display(description="state")
    def state(self, obj):
        return f"resolved by {obj.resolved_by}" if obj.resolved_at else "open: account under review"

    @admin.action(description="Resolve selected breaks (owners)", permissions=["manage"])
    def resolve(self, request, queryset):
        return self.confirm_and_apply(
            request, queryset, title="Resolve breaks", verb="resolve", perm=MANAGE, form_class=ResolutionForm,
            apply=lambda found, values, actor: break_resolve(break_id=found.pk, actor=actor,
                                                             reason=values["reason"]))

    def has_manage_permission(self, request, obj=None):
        return self._allowed(request, MANAGE, obj)
