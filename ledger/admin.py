from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.actors import Actor
from tenants.admin_base import TenantScopedAdmin
from tenants.roles import OPERATE

from .currencies import EXPONENTS, format_minor
from .models import Account, LedgerEntry, LedgerTransaction, ReconciliationBreak, ReconciliationRun
from .selectors import account_balances, with_hold_totals
from .services.accounts import account_close, account_create, account_freeze, account_unfreeze
from .services.postings import ledger_transaction_reverse

STATEMENT_PAGE = 50


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under a parent the operator may already see (the parent's admin scopes it)."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(TenantScopedAdmin):
    add_perm = OPERATE
    list_display = ["id", "name", "customer", "tenant", "account_type", "currency", "status", "posted", "available"]
    list_filter = ["status", "account_type", "currency", "is_system"]
    search_fields = ["id", "name", "customer"]
    actions = ["freeze", "unfreeze", "close"]
    change_form_template = "admin/ledger/account/change_form.html"

    def get_queryset(self, request):
        return with_hold_totals(super().get_queryset(request))

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "currency":
            # Only ISO 4217 codes the ledger supports, so a typo is a form error, not a refusal later.
            return forms.ChoiceField(choices=[(code, code) for code in sorted(EXPONENTS)], initial="USD")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["tenant", "customer", "name", "currency", "account_type", "normal_balance", "allow_overdraft",
                    "overdraft_limit", "metadata"]
        return ["id", "tenant", "customer", "name", "currency", "account_type", "normal_balance", "status",
                "allow_overdraft", "overdraft_limit", "is_system", "posted", "held", "available", "last_sequence",
                "metadata", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return self.get_fields(request, obj)

    @admin.display(description="posted")
    def posted(self, obj):
        return format_minor(obj.posted_balance, obj.currency)

    @admin.display(description="held")
    def held(self, obj):
        return format_minor(account_balances(obj).held, obj.currency)

    @admin.display(description="available")
    def available(self, obj):
        available = account_balances(obj).available
        return "no limit" if available is None else format_minor(available, obj.currency)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, unquote(object_id))
        return super().change_view(request, object_id, form_url,
                                   extra_context={**(extra_context or {}), **self._statement(request, account)})

    def _statement(self, request, account) -> dict:
        """A keyset page of the statement (`?before=`/`?after=` a sequence): one index range
        scan, as fast on the millionth entry as on the first."""
        entries = LedgerEntry.objects.filter(account=account).select_related("transaction")
        before, after = request.GET.get("before", ""), request.GET.get("after", "")
        if after.isdigit():
            page = list(entries.filter(sequence__gt=int(after)).order_by("sequence")[:STATEMENT_PAGE])[::-1]
        else:
            if before.isdigit():
                entries = entries.filter(sequence__lt=int(before))
            page = list(entries.order_by("-sequence")[:STATEMENT_PAGE])
        rows = [{"entry": e, "amount": format_minor(e.amount, e.currency),
                 "balance_after": format_minor(e.balance_after, e.currency)} for e in page]
        context = {
            "statement_rows": rows,
            "statement_newer": page[0].sequence if page and page[0].sequence < account.last_sequence else None,
            "statement_older": page[-1].sequence if page and page[-1].sequence > 1 else None,
        }
        raw_as_of = request.GET.get("as_of", "")
        if raw_as_of:
            as_of = parse_datetime(raw_as_of)
            if as_of is not None and as_of.tzinfo is None:
                as_of = timezone.make_aware(as_of)
            context["as_of_input"] = raw_as_of
            if as_of is None:
                context["as_of_error"] = "Not a date and time (e.g. 2026-11-26 14:00)."
            else:
                balances = account_balances(account, as_of=as_of)
                context["as_of_balance"] = format_minor(balances.posted, account.currency)
                context["as_of"] = as_of
        return context

    def save_model(self, request, obj, form, change):
        account = account_create(
            tenant=obj.tenant, currency=obj.currency, account_type=obj.account_type, customer=obj.customer,
            name=obj.name, normal_balance=obj.normal_balance, allow_overdraft=obj.allow_overdraft,
            overdraft_limit=obj.overdraft_limit, metadata=obj.metadata, actor=Actor.for_user(request.user))
        obj.pk = account.pk

    @admin.action(description="Freeze selected accounts", permissions=["operate"])
    def freeze(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Freeze accounts", verb="freeze",
                                      apply=lambda a, values, actor: account_freeze(account=a, actor=actor, reason=values["reason"]))

    @admin.action(description="Unfreeze selected accounts", permissions=["operate"])
    def unfreeze(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Unfreeze accounts", verb="unfreeze",
                                      apply=lambda a, values, actor: account_unfreeze(account=a, actor=actor, reason=values["reason"]))

    @admin.action(description="Close selected accounts", permissions=["operate"])
    def close(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Close accounts", verb="close",
                                      apply=lambda a, values, actor: account_close(account=a, actor=actor, reason=values["reason"]))


class EntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ["id", "account", "direction", "amount", "currency", "sequence", "balance_after", "created_at"]
    readonly_fields = fields


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(TenantScopedAdmin):
    list_display = ["id", "kind", "description", "tenant", "reverses", "created_at", "effective_at"]
    list_filter = ["kind"]
    search_fields = ["id", "description", "source_request_id"]
    list_select_related = ["tenant", "reverses"]
    readonly_fields = ["id", "tenant", "kind", "description", "metadata", "reverses", "reversed_by_link",
                       "effective_at", "created_at", "source_request_id", "actor"]
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
        return self.confirm_and_apply(
            request, queryset, title="Reverse transactions", verb="reverse",
            apply=lambda t, values, actor: ledger_transaction_reverse(tenant=t.tenant, transaction_id=t.id,
                                                                      actor=actor, reason=values["reason"]))


@admin.register(LedgerEntry)
class LedgerEntryAdmin(TenantScopedAdmin):
    list_display = ["id", "account", "transaction", "direction", "amount", "currency", "sequence", "balance_after",
                    "created_at"]
    list_filter = ["direction", "currency"]
    search_fields = ["=id", "=account__id", "=transaction__id"]
    list_select_related = ["account", "transaction"]
    readonly_fields = ["id", "tenant", "account", "transaction", "direction", "amount", "currency", "sequence",
                       "balance_after", "hash", "created_at"]
    fields = readonly_fields
    show_full_result_count = False


class BreakInline(ReadOnlyInline):
    model = ReconciliationBreak
    fields = ["kind", "account_id", "currency", "detail"]
    readonly_fields = fields
    show_change_link = False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(TenantScopedAdmin):
    list_display = ["id", "tenant", "status", "trigger", "started_at", "finished_at", "accounts_checked",
                    "entries_checked", "breaks_count"]
    list_filter = ["status", "trigger"]
    readonly_fields = ["id", "tenant", "status", "trigger", "actor", "started_at", "finished_at",
                       "accounts_checked", "entries_checked", "breaks_count"]
    fields = readonly_fields
    inlines = [BreakInline]
