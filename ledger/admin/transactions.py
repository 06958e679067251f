"""Ledger transactions (read-only, reversible through the service), entries and the runs of
ledger verification with their breaks."""

from django.contrib import admin

from tenants.admin_base import EstimatedCountPaginator, ReadOnlyInline, TenantScopedAdmin

from ..currencies import format_minor
from ..models import LedgerEntry, LedgerTransaction, ReconciliationBreak, ReconciliationRun
from ..services.approvals import transaction_reverse_or_propose
from .breaks import BreakColumns
from .filters import CurrencyListFilter


class EntryInline(ReadOnlyInline):
    model = LedgerEntry
    readonly_fields = ("id", "account", "direction", "amount_shown", "balance_after_shown", "sequence", "created_at")
    fields = readonly_fields

    @admin.display(description="balance after")
    def balance_after_shown(self, obj):
        return format_minor(obj.balance_after, obj.currency)


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(TenantScopedAdmin):
    paginator = EstimatedCountPaginator  # millions of rows: no full count
    show_full_result_count = False
    list_display = ["id", "kind", "description", "created_at", "tenant"]
    list_filter = ["kind"]
    search_fields = ["id", "description", "source_request_id"]
    list_select_related = ["tenant", "reverses"]
    readonly_fields = ("id", "tenant", "kind", "description", "metadata_table", "reverses", "reversed_by_link",
                       "effective_at", "created_at", "source_request_id", "actor_name")
    fields = readonly_fields
    inlines = [EntryInline]
    actions = ["reverse"]

    @admin.display(description="reversed by")
    def reversed_by_link(self, obj):
        try:
            return obj.reversed_by
        except LedgerTransaction.DoesNotExist:
            return "—"

    @admin.action(description="Reverse selected transactions", permissions=["operate"])
    def reverse(self, request, queryset):
        """Above the tenant's threshold an operator's reversal waits for a second person."""
        return self.confirm_and_apply(
            request, queryset, title="Reverse transactions", verb="reverse",
            apply=lambda t, values, actor: transaction_reverse_or_propose(tenant=t.tenant, transaction_id=t.id,
                                                                          actor=actor, reason=values["reason"]))


@admin.register(LedgerEntry)
class LedgerEntryAdmin(TenantScopedAdmin):
    paginator = EstimatedCountPaginator  # millions of rows: no full count
    show_full_result_count = False
    list_display = ["id", "account_label", "transaction_id", "direction", "amount_shown", "balance_after_shown",
                    "sequence", "created_at"]
    list_filter = ["direction", CurrencyListFilter]
    # Newest first by id (ids begin with their creation time): the primary key's index serves
    # it at any size, where the model's (account, sequence) order sorted the tenant's entries.
    ordering = ["-id"]
    search_fields = ["=id", "=account__id", "=transaction__id"]
    list_select_related = ["account"]
    readonly_fields = ("id", "tenant", "account", "transaction", "direction", "amount", "currency", "sequence",
                       "balance_after", "hash", "created_at")
    fields = readonly_fields
    show_full_result_count = False

    @admin.display(description="balance after")
    def balance_after_shown(self, obj):
        return format_minor(obj.balance_after, obj.currency)


class BreakInline(BreakColumns, ReadOnlyInline):
    model = ReconciliationBreak
    readonly_fields = ("kind", "account", "currency", "what_disagreed")
    fields = readonly_fields
    show_change_link = False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(TenantScopedAdmin):
    list_display = ["id", "tenant", "status", "trigger", "started_at", "finished_at", "accounts_checked",
                    "entries_checked", "breaks_count"]
    list_filter = ["status", "trigger"]
    readonly_fields = ("id", "tenant", "status", "trigger", "actor_name", "started_at", "finished_at",
                       "accounts_checked", "entries_checked", "breaks_count")
    fields = readonly_fields
    inlines = [BreakInline]
