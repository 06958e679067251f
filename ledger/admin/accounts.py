"""Accounts in the back office: balances, the statement, as-of balances, and the careful
actions (freeze, unfreeze, close, place a hold), each through the same service as the API."""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.actors import Actor
from backoffice.selectors.dashboard import line_chart
from tenants.admin_base import TenantScopedAdmin, form_errors_from
from tenants.roles import OPERATE
from zentra.errors import ValidationFailed

from ..currencies import EXPONENTS, format_minor
from ..models import Account, Hold, LedgerEntry
from ..selectors import account_balances, with_hold_totals
from ..services.accounts import account_close, account_create, account_freeze, account_unfreeze, account_values_check
from ..services.holds import hold_place
from .filters import CurrencyListFilter

STATEMENT_PAGE = 50
CHART_ENTRIES = 200


class AccountAddForm(forms.ModelForm):
    """What a new account may be is the service's rule (account_values_check); the form shows
    its refusals on the fields they name, exactly as the API does."""

    class Meta:
        model = Account
        fields = ["tenant", "customer", "name", "currency", "account_type", "normal_balance", "allow_overdraft",
                  "overdraft_limit", "metadata"]

    def clean(self):
        values = super().clean() or {}
        if not self.errors:
            try:
                account_values_check(currency=values["currency"], account_type=values["account_type"],
                                     normal_balance=values["normal_balance"],
                                     allow_overdraft=values.get("allow_overdraft", False),
                                     overdraft_limit=values.get("overdraft_limit"))
            except ValidationFailed as exc:
                form_errors_from(self, exc)
        return values


class PlaceHoldForm(forms.Form):
    amount = forms.IntegerField(min_value=1, help_text="In minor units (cents for USD).")
    expires_at = forms.DateTimeField(help_text="When the hold lapses and its funds return (UTC).")
    reference = forms.CharField(max_length=255, required=False)
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Why: kept with the hold as evidence.")


@admin.register(Account)
class AccountAdmin(TenantScopedAdmin):
    add_perm = OPERATE
    list_display = ["label", "customer", "account_type", "status", "posted", "held", "available", "tenant"]
    list_filter = ["status", "account_type", CurrencyListFilter, "is_system"]
    search_fields = ["id", "name", "customer"]
    actions = ["freeze", "unfreeze", "close", "place_hold"]
    change_form_template = "admin/ledger/account/change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AccountAddForm
        return super().get_form(request, obj, change, **kwargs)

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
                "under_review", "allow_overdraft", "overdraft_limit", "is_system", "posted", "held", "available",
                "last_sequence", "metadata_table", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return self.get_fields(request, obj)

    @admin.display(description="account", ordering="name")
    def label(self, obj):
        return obj.name or obj.customer or f"{obj.account_type} {obj.currency}"

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

    def changelist_view(self, request, extra_context=None):
        explained = ("Posted: the ledger balance. Held: what active holds reserve (already moved to the reserve "
                     "account). Available: what a debit or a new hold may use.")
        return super().changelist_view(request, {"balances_explained": explained, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, unquote(object_id))
        context = {**(extra_context or {}), **self._statement(request, account), **self._holds_and_chart(account)}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _holds_and_chart(self, account) -> dict:
        """The holds behind the held total, and the balance over its latest entries (an index
        range on (account, sequence): as fast on the millionth entry as on the first)."""
        holds = list(Hold.objects.filter(account=account, status=Hold.ACTIVE).order_by("expires_at")[:50])
        now = timezone.now()
        latest = list(LedgerEntry.objects.filter(account=account).order_by("-sequence")
                      .values_list("created_at", "balance_after")[:CHART_ENTRIES])[::-1]
        return {
            "active_holds": [{"hold": h, "remaining": format_minor(h.remaining, h.currency),
                              "lapsed": h.expires_at <= now} for h in holds],
            "balance_chart": line_chart(latest, value_label=lambda v: format_minor(v, account.currency))
            if len(latest) > 1 else "",
            "chart_entries": len(latest),
        }

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
        context: dict[str, Any] = {
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
                                      apply=lambda a, values, actor: account_freeze(
                                          tenant=a.tenant, account_id=a.id, actor=actor, reason=values["reason"]))

    @admin.action(description="Unfreeze selected accounts", permissions=["operate"])
    def unfreeze(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Unfreeze accounts", verb="unfreeze",
                                      apply=lambda a, values, actor: account_unfreeze(
                                          tenant=a.tenant, account_id=a.id, actor=actor, reason=values["reason"]))

    @admin.action(description="Close selected accounts", permissions=["operate"])
    def close(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Close accounts", verb="close",
                                      apply=lambda a, values, actor: account_close(
                                          tenant=a.tenant, account_id=a.id, actor=actor, reason=values["reason"]))

    @admin.action(description="Place a hold on selected accounts", permissions=["operate"])
    def place_hold(self, request, queryset):
        def place(account, values, actor):
            hold = hold_place(tenant=account.tenant, account_id=account.id, amount=values["amount"],
                              expires_at=values["expires_at"], reference=values["reference"],
                              metadata={"reason": values["reason"]}, actor=actor)
            return f"{account}: hold {hold.id} of {format_minor(hold.amount, hold.currency)} placed."

        return self.confirm_and_apply(request, queryset, title="Place holds", verb="place a hold on",
                                      apply=place, form_class=PlaceHoldForm,
                                      initial={"expires_at": timezone.now() + timedelta(days=1)})


