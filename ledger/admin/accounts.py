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
from ..models import MAX_SHARDS, Account, Hold, LedgerEntry, logical_account_of
from ..selectors import (
    account_balances,
    account_row_ids,
    account_statement,
    statement_order_field,
    with_hold_totals,
)
from ..services.accounts import account_close, account_create, account_freeze, account_unfreeze, account_values_check
from ..services.holds import hold_place
from ..services.shards import account_shards_set
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


class ShardForm(forms.Form):
    shards = forms.IntegerField(min_value=1, max_value=MAX_SHARDS, initial=8,
                                help_text="Rows in all, each locking on its own; shards are never removed.")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Why: kept in the account's history.")


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
    actions = ["freeze", "unfreeze", "close", "place_hold", "shard"]
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
        # A hot account's sequences are its shards' own (the Shards table below), not one number.
        sequence = ["shard_count"] if obj.shard_count > 1 else ["last_sequence"]
        return ["id", "tenant", "customer", "name", "currency", "account_type", "normal_balance", "status",
                "under_review", "allow_overdraft", "overdraft_limit", "is_system", "posted", "held", "available",
                *sequence, "metadata_table", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return self.get_fields(request, obj)

    @admin.display(description="account", ordering="name")
    def label(self, obj):
        return obj.name or obj.customer or f"{obj.account_type} {obj.currency}"

    @admin.display(description="posted")
    def posted(self, obj):
        return format_minor(account_balances(obj).posted, obj.currency)  # summed over a hot account's shards

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
        # A shard's running balance is not the account's: a hot account shows its shards instead.
        latest = [] if account.shard_count > 1 else list(
            LedgerEntry.objects.filter(account=account).order_by("-sequence")
            .values_list("created_at", "balance_after")[:CHART_ENTRIES])[::-1]
        shards = [] if account.shard_count == 1 else list(
            Account.rows.filter(pk__in=account_row_ids(account)).order_by("shard"))
        return {
            "shard_rows": [{"row": row, "posted": format_minor(row.posted_balance, row.currency)} for row in shards],
            "active_holds": [{"hold": h, "remaining": format_minor(h.remaining, h.currency),
                              "lapsed": h.expires_at <= now} for h in holds],
            "balance_chart": line_chart(latest, value_label=lambda v: format_minor(v, account.currency))
            if len(latest) > 1 else "",
            "chart_entries": len(latest),
        }

    def _statement(self, request, account) -> dict:
        """A keyset page of the statement (`?before=`/`?after=` a sequence, or for a hot account,
        whose shards number their entries each, an entry id): one index range scan, as fast on
        the millionth entry as on the first."""
        entries = account_statement(account).select_related("transaction")
        key = statement_order_field(account)
        before, after = request.GET.get("before", ""), request.GET.get("after", "")
        wanted = str.isdigit if key == "sequence" else (lambda value: value.startswith("ent_"))
        if wanted(after):
            page = list(entries.filter(**{f"{key}__gt": after}).order_by(key)[:STATEMENT_PAGE + 1])[::-1]
            newer, page = len(page) > STATEMENT_PAGE, page[-STATEMENT_PAGE:]
            older = True
        else:
            if wanted(before):
                entries = entries.filter(**{f"{key}__lt": before})
            page = list(entries.order_by(f"-{key}")[:STATEMENT_PAGE + 1])
            older, page = len(page) > STATEMENT_PAGE, page[:STATEMENT_PAGE]
            newer = wanted(before)
        rows = [{"entry": e, "amount": format_minor(e.amount, e.currency), "shard": logical_account_of(e.account_id)[1],
                 "balance_after": format_minor(e.balance_after, e.currency)} for e in page]
        context: dict[str, Any] = {
            "statement_rows": rows, "statement_sharded": account.shard_count > 1,
            "statement_newer": getattr(page[0], key) if page and newer else None,
            "statement_older": getattr(page[-1], key) if page and older else None,
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

    @admin.action(description="Spread selected hot accounts over shards", permissions=["operate"])
    def shard(self, request, queryset):
        def spread(account, values, actor):
            sharded = account_shards_set(tenant=account.tenant, account_id=account.id, shards=values["shards"],
                                         reason=values["reason"], actor=actor)
            return f"{account}: spread over {sharded.shard_count} shards."

        return self.confirm_and_apply(request, queryset, title="Spread accounts over shards",
                                      verb="spread over shards", apply=spread, form_class=ShardForm)

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


