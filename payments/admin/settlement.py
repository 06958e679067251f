"""Settlement reports in the back office: upload a provider's report, watch it match, read its
lines and the breaks it opened (payments/services/settlement/)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html

from audit.actors import Actor
from backoffice.templatetags.zentra import idlink, linkify, money
from ledger.models import ReconciliationBreak
from tenants.admin_base import EstimatedCountPaginator, TenantScopedAdmin, form_errors_from
from tenants.roles import OPERATE
from zentra.errors import ZentraError

from ..api.settlement import match_soon
from ..models import SettlementLine, SettlementReport
from ..services.settlement.reports import settlement_report_receive
from .intents import _table


class UploadForm(forms.ModelForm):
    """The provider, the period the report covers, and the CSV itself; checked whole by the
    service (a malformed line is named, and nothing is kept)."""

    actor: Actor  # set per request by SettlementReportAdmin.get_form
    file = forms.FileField(help_text="CSV with the columns line_id,type,provider_reference,currency,gross,fee,net,"
                                     "booked_at (docs/reconciliation.md).")

    class Meta:
        model = SettlementReport
        fields = ["provider", "period_start", "period_end"]
        help_texts = {"period_start": "UTC; a line booked before it is refused.",
                      "period_end": "UTC, excluded; a line booked at or after it is refused."}

    def clean(self):
        values = super().clean() or {}
        provider = values.get("provider")
        if self.errors or provider is None:
            return values
        try:
            self.report = settlement_report_receive(
                tenant=provider.tenant, provider_id=provider.id, content=values["file"].read(),
                period_start=values.get("period_start"), period_end=values.get("period_end"),
                actor=self.actor)
        except ZentraError as exc:
            form_errors_from(self, exc)
        return values


@admin.register(SettlementReport)
class SettlementReportAdmin(TenantScopedAdmin):
    add_perm = OPERATE
    list_display = ["id", "provider", "period", "source", "status", "lines", "matched", "breaks_link", "fees",
                    "created_at"]
    list_filter = ["status", "source"]
    list_select_related = ["provider", "tenant"]
    search_fields = ["=id", "=sha256"]
    readonly_fields = ["id", "tenant", "provider", "period", "source", "status", "lines", "matched", "breaks_link",
                       "fees", "fee_transaction", "run", "sha256", "uploaded_by_name", "failure_reason",
                       "created_at", "finished_at", "breaks_shown"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = UploadForm
            form = super().get_form(request, obj, **kwargs)
            form.actor = Actor.for_user(request.user)  # a class made for this request (modelform_factory)
            return form
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["provider", "period_start", "period_end", "file"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        report = form.report  # received by the form's check, through the service
        obj.pk = report.pk
        transaction.on_commit(lambda: match_soon(report))

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"{obj.pk} received: matching runs in a worker; this page shows its outcome.")
        return super().response_add(request, obj, post_url_continue)

    @admin.display(description="period")
    def period(self, obj):
        return f"{obj.period_start:%Y-%m-%d %H:%M} – {obj.period_end:%Y-%m-%d %H:%M} UTC"

    @admin.display(description="fees posted")
    def fees(self, obj):
        currency = obj.report_lines.values_list("currency", flat=True).first() or ""
        return money(obj.fees_posted, currency) if currency else obj.fees_posted

    @admin.display(description="fee posting")
    def fee_transaction(self, obj):
        return idlink(obj.fee_transaction_id) if obj.fee_transaction_id else "—"

    @admin.display(description="reconciliation run")
    def run(self, obj):
        return idlink(obj.run_id) if obj.run_id else "—"

    @admin.display(description="uploaded by")
    def uploaded_by_name(self, obj):
        return linkify(obj.uploaded_by)

    @admin.display(description="breaks", ordering="breaks")
    def breaks_link(self, obj):
        if not obj.breaks:
            return "0"
        url = reverse("admin:ledger_reconciliationbreak_changelist") + f"?q={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.breaks)

    @admin.display(description="breaks opened")
    def breaks_shown(self, obj):
        found = ReconciliationBreak.objects.filter(tenant_id=obj.tenant_id, report_id=obj.pk).order_by("id")[:50]
        return _table(["break", "kind", "line", "reference", "ledger says", "provider says", "state"], [
            (idlink(b.pk), b.kind, b.line_id or "—", b.provider_reference,
             money(b.expected, b.currency) if b.expected is not None else "—",
             money(b.actual, b.currency) if b.actual is not None else "—", b.status) for b in found])


@admin.register(SettlementLine)
class SettlementLineAdmin(TenantScopedAdmin):
    """Every line of every report, as the provider wrote it, and what matching found."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_display = ["report_link", "line_no", "line_id", "type", "provider_reference", "gross_shown", "fee_shown",
                    "booked_at", "outcome"]
    list_filter = ["outcome", "type"]
    search_fields = ["=report__id", "=provider_reference", "=line_id"]
    list_select_related = ["report"]
    readonly_fields = ["report_link", "line_no", "line_id", "type", "provider_reference", "currency", "gross_shown",
                       "fee_shown", "net", "booked_at", "outcome", "record"]
    fields = readonly_fields

    @admin.display(description="report")
    def report_link(self, obj):
        return idlink(obj.report_id)

    @admin.display(description="gross", ordering="gross")
    def gross_shown(self, obj):
        return money(obj.gross, obj.currency)

    @admin.display(description="fee")
    def fee_shown(self, obj):
        return money(obj.fee, obj.currency)
