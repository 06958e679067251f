"""Operator review of holds: what is reserved where, until when, and how each hold ended."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from tenants.admin_base import ReadOnlyInline, TenantScopedAdmin
from webhooks.models import Event

from ..currencies import format_minor
from ..models import Account, Hold, LedgerTransaction
from ..services.holds import hold_capture, hold_release
from ..shapes import effective_hold_status
from .filters import CurrencyListFilter


class HoldStateFilter(admin.SimpleListFilter):
    title = "attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("expiring", "Expiring within an hour"), ("expiring_day", "Expiring within 24 hours"),
                ("lapsed", "Expired, not yet released")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "expiring":
            return queryset.filter(status=Hold.ACTIVE, expires_at__gt=now, expires_at__lte=now + timedelta(hours=1))
        if self.value() == "expiring_day":
            return queryset.filter(status=Hold.ACTIVE, expires_at__gt=now, expires_at__lte=now + timedelta(hours=24))
        if self.value() == "lapsed":
            return queryset.filter(status=Hold.ACTIVE, expires_at__lte=now)
        return queryset


class HoldTransactionInline(ReadOnlyInline):
    model = LedgerTransaction
    fk_name = "hold"
    readonly_fields = ("id", "kind", "description", "created_at", "actor_name")
    fields = readonly_fields
    verbose_name_plural = "ledger transactions of this hold"


class CaptureForm(forms.Form):
    destination = forms.ModelChoiceField(queryset=Account.objects.none(),
                                         help_text="Where the captured funds go (same tenant and currency).")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(Hold)
class HoldAdmin(TenantScopedAdmin):
    list_display = ["id", "account_label", "amount_shown", "remaining_shown", "shown_status", "expires_at", "reference",
                    "tenant"]
    list_filter = ["status", HoldStateFilter, CurrencyListFilter]
    search_fields = ["=id", "=account__id", "reference", "source_request_id"]
    list_select_related = ["tenant", "account"]
    readonly_fields = ("id", "tenant", "account", "reserve_account", "amount_shown", "captured_shown",
                       "released_shown", "remaining_shown", "shown_status", "expires_at", "reference", "metadata_table",
                       "source_request_id",
                       "created_by_name", "created_at", "resolved_by_name", "resolution_reason", "resolved_at",
                       "events")
    fields = readonly_fields
    inlines = [HoldTransactionInline]
    actions = ["release", "capture"]

    @admin.display(description="captured")
    def captured_shown(self, obj):
        return format_minor(obj.captured_amount, obj.currency)

    @admin.display(description="released")
    def released_shown(self, obj):
        return format_minor(obj.released_amount, obj.currency)

    @admin.display(description="remaining")
    def remaining_shown(self, obj):
        return format_minor(obj.remaining, obj.currency)

    @admin.display(description="status")
    def shown_status(self, obj):
        status = effective_hold_status(obj, timezone.now())
        return f"{status} (expiry job pending)" if status != obj.status else status

    @admin.display(description="events")
    def events(self, obj):
        rows = Event.objects.filter(resource_id=obj.id).order_by("id").values_list("type", "id", "created_at")
        return "; ".join(f"{t} {i} at {c:%Y-%m-%d %H:%M:%S}" for t, i, c in rows) or "—"

    @admin.action(description="Release selected holds", permissions=["operate"])
    def release(self, request, queryset):
        return self.confirm_and_apply(
            request, queryset, title="Release holds", verb="release",
            apply=lambda h, values, actor: hold_release(tenant=h.tenant, hold_id=h.id, actor=actor,
                                                        reason=values["reason"]))

    @admin.action(description="Capture selected holds (all that remains)", permissions=["operate"])
    def capture(self, request, queryset):
        pairs = {(h.tenant_id, h.currency) for h in queryset}
        if len(pairs) != 1:
            self.message_user(request, "Capture holds of one tenant and one currency at a time.", messages.ERROR)
            return None
        tenant_id, currency = pairs.pop()

        def destinations(form):
            form.fields["destination"].queryset = Account.objects.filter(
                tenant_id=tenant_id, currency=currency, status=Account.ACTIVE, is_system=False)

        def capture_one(hold, values, actor):
            hold_capture(tenant=hold.tenant, hold_id=hold.id, destination_account_id=values["destination"].id,
                         actor=actor, reason=values["reason"])
            return f"{hold.id}: captured."

        return self.confirm_and_apply(request, queryset, title="Capture holds", verb="capture", apply=capture_one,
                                      form_class=CaptureForm, prepare_form=destinations)
