"""Closed ledger periods in the back office (docs/periods.md): the list, a page per period with
its trial balance and the signed closing-balances CSV, and the close itself, for owners.

Every close made here goes through `LedgerPeriodAdmin.period_close`, the one place the admin
closes (`ledger.services.approvals.period_close_or_propose`): by default a close waits for a
second person's approval."""

from __future__ import annotations

from datetime import UTC

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit.actors import Actor
from audit.models import Approval
from backoffice.templatetags.zentra import actor_name, linkify
from tenants.admin_base import TenantScopedAdmin, deny, form_errors_from, proposed_or_done
from tenants.models import Tenant
from tenants.roles import MANAGE
from zentra.errors import ZentraError

from ..currencies import format_minor
from ..models import LedgerPeriod
from ..services.approvals import period_close_or_propose
from ..services.periods import latest_close, period_csv, period_signature_valid


class PeriodCloseForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    until = forms.DateTimeField(
        help_text="UTC, e.g. 2026-11-01 00:00. Postings effective before this instant are refused from then on; "
                  "it may not be in the future, and must come after the tenant's latest close.")


def trial_balance_summary(period: LedgerPeriod) -> str:
    return "; ".join(f"{format_minor(line['debits'], line['currency'])} Dr = "
                     f"{format_minor(line['credits'], line['currency'])} Cr" for line in period.trial_balance) or "—"


@admin.register(LedgerPeriod)
class LedgerPeriodAdmin(TenantScopedAdmin):
    list_display = ["id", "closed_until", "trial_balance_shown", "accounts", "checkpoint_shown", "closed_by_name",
                    "tenant"]
    list_display_links = ["id"]
    list_select_related = ["tenant"]
    search_fields = ["=id", "=checkpoint__id"]
    readonly_fields = ("id", "tenant", "closed_until", "closed_by_name", "created_at", "accounts", "checkpoint_shown",
                       "trial_balance_table", "signature_shown", "closing_balances")
    fields = readonly_fields
    change_list_template = "admin/ledger/ledgerperiod/change_list.html"
    change_form_template = "admin/ledger/ledgerperiod/change_form.html"

    @admin.display(description="trial balance")
    def trial_balance_shown(self, obj):
        return trial_balance_summary(obj)

    @admin.display(description="checkpoint")
    def checkpoint_shown(self, obj):
        return obj.checkpoint_id

    @admin.display(description="closed by")
    def closed_by_name(self, obj):
        return linkify(actor_name(obj.closed_by))

    @admin.display(description="trial balance (entries effective before the close)")
    def trial_balance_table(self, obj):
        if not obj.trial_balance:
            return "No entries before the close."
        rows = format_html_join("", '<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td></tr>', (
            (line["currency"], format_minor(line["debits"], line["currency"]),
             format_minor(line["credits"], line["currency"])) for line in obj.trial_balance))
        return format_html('<table id="trial-balance"><thead><tr><th>Currency</th><th class="num">Debits</th>'
                           '<th class="num">Credits</th></tr></thead><tbody>{}</tbody></table>', rows)

    @admin.display(description="signature")
    def signature_shown(self, obj):
        verdict = "verifies" if period_signature_valid(obj) else "DOES NOT VERIFY"
        return f"Ed25519, key {obj.kid}: {verdict} against the stored closing balances"

    @admin.display(description="closing balances")
    def closing_balances(self, obj):
        url = reverse("admin:ledger_ledgerperiod_closing_balances", args=[obj.pk])
        return format_html('<a href="{}" id="closing-balances-csv">Download the signed closing balances (CSV, {} '
                           'accounts)</a>', url, obj.accounts)

    # --- read-only rows; the close is the one action -------------------------------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_permission(self, request, obj=None):
        return self._allowed(request, MANAGE, obj)

    def get_urls(self):
        own = [
            path("close/", self.admin_site.admin_view(self.close_view), name="ledger_ledgerperiod_close"),
            path("<path:object_id>/closing_balances.csv", self.admin_site.admin_view(self.closing_balances_view),
                 name="ledger_ledgerperiod_closing_balances"),
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        context = {"can_close_period": self.has_manage_permission(request), **(extra_context or {})}
        return super().changelist_view(request, context)

    def closing_balances_view(self, request, object_id):
        if not self.has_view_permission(request):
            deny(request, action="admin:download ledger.ledgerperiod", target=object_id, reason="no role grants this")
            raise PermissionDenied
        period = self.get_object(request, unquote(object_id))  # another tenant's: 404 and evidence
        response = HttpResponse(period_csv(period), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{period.id}_closing_balances.csv"'
        return response

    def close_view(self, request):
        if not self.has_manage_permission(request):
            deny(request, action="admin:close ledger.ledgerperiod", reason="only owners close ledger periods")
            raise PermissionDenied
        form = PeriodCloseForm(request.POST if request.method == "POST" else None)
        tenants = Tenant.objects.order_by("slug")
        allowed = self.allowed_tenant_ids(request, MANAGE)
        if allowed is not None:
            tenants = tenants.filter(pk__in=allowed)
        form.fields["tenant"].queryset = tenants  # type: ignore[attr-defined]
        if len(tenants) == 1:
            form.fields["tenant"].initial = tenants[0]
        # The usual close: everything before today (UTC).
        form.fields["until"].initial = timezone.now().astimezone(UTC).strftime("%Y-%m-%d 00:00")
        if request.method == "POST" and form.is_valid():
            try:
                period = self.period_close(request, tenant=form.cleaned_data["tenant"],
                                           until=form.cleaned_data["until"])
            except ZentraError as exc:
                form_errors_from(form, exc)
            else:
                if isinstance(period, Approval):  # the tenant asks for a second person (by default, it does)
                    self.message_user(request, proposed_or_done(period), messages.WARNING)
                    return HttpResponseRedirect(reverse("admin:audit_approval_change", args=[period.pk]))
                until = f"{period.closed_until:%Y-%m-%d %H:%M:%S}"
                self.message_user(request, f"Ledger of {period.tenant} closed until {until} UTC ({period.id}).",
                                  messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:ledger_ledgerperiod_change", args=[period.pk]))
        latest = {tenant.pk: latest_close(tenant.pk) for tenant in tenants}
        context = {
            **self.admin_site.each_context(request),
            "title": "Close a ledger period",
            "opts": self.model._meta,
            "form": form,
            "now": timezone.now(),
            "latest": [(tenant, latest[tenant.pk]) for tenant in tenants],
        }
        return TemplateResponse(request, "admin/ledger/ledgerperiod/close.html", context)

    def period_close(self, request, *, tenant: Tenant, until) -> LedgerPeriod | Approval:
        """The admin's one call of the close service: the close, or the proposal that waits for a
        second person (tenants/approval_rules.py)."""
        return period_close_or_propose(tenant=tenant, until=until, actor=Actor.for_user(request.user))
