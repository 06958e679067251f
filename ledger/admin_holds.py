"""Operator review of holds: what is reserved where, until when, and how each hold ended."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from audit.actors import Actor
from tenants.admin_base import TenantScopedAdmin, deny
from tenants.roles import OPERATE
from webhooks.models import Event
from zentra.errors import ZentraError

from .admin import ReadOnlyInline
from .currencies import format_minor
from .models import Account, Hold, LedgerTransaction
from .representations import effective_hold_status
from .services.holds import hold_capture, hold_release


class HoldStateFilter(admin.SimpleListFilter):
    title = "attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("expiring", "Expiring within an hour"), ("lapsed", "Expired, not yet released")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "expiring":
            return queryset.filter(status=Hold.ACTIVE, expires_at__gt=now, expires_at__lte=now + timedelta(hours=1))
        if self.value() == "lapsed":
            return queryset.filter(status=Hold.ACTIVE, expires_at__lte=now)
        return queryset


class HoldTransactionInline(ReadOnlyInline):
    model = LedgerTransaction
    fk_name = "hold"
    fields = ["id", "kind", "description", "created_at", "actor"]
    readonly_fields = fields
    verbose_name_plural = "ledger transactions of this hold"


class CaptureForm(forms.Form):
    destination = forms.ModelChoiceField(queryset=Account.objects.none(),
                                         help_text="Where the captured funds go (same tenant and currency).")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(Hold)
class HoldAdmin(TenantScopedAdmin):
    list_display = ["id", "tenant", "account", "amount_shown", "remaining_shown", "shown_status", "expires_at",
                    "reference", "resolved_by"]
    list_filter = ["status", HoldStateFilter, "currency"]
    search_fields = ["=id", "=account__id", "reference", "source_request_id"]
    list_select_related = ["tenant", "account"]
    readonly_fields = ["id", "tenant", "account", "reserve_account", "amount", "currency", "captured_amount",
                       "released_amount", "shown_status", "expires_at", "reference", "metadata", "source_request_id",
                       "created_by", "created_at", "resolved_by", "resolution_reason", "resolved_at", "events"]
    fields = readonly_fields
    inlines = [HoldTransactionInline]
    actions = ["release", "capture"]

    @admin.display(description="amount")
    def amount_shown(self, obj):
        return format_minor(obj.amount, obj.currency)

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
            apply=lambda h, reason, actor: hold_release(tenant=h.tenant, hold_id=h.id, actor=actor, reason=reason))

    @admin.action(description="Capture selected holds (all that remains)", permissions=["operate"])
    def capture(self, request, queryset):
        holds = list(queryset)
        currencies = {(h.tenant_id, h.currency) for h in holds}
        if len(currencies) != 1:
            self.message_user(request, "Capture holds of one tenant and one currency at a time.", messages.ERROR)
            return None
        tenant_id, currency = currencies.pop()
        destinations = Account.objects.filter(tenant_id=tenant_id, currency=currency, status=Account.ACTIVE,
                                              is_system=False)
        form = CaptureForm(request.POST if "confirm" in request.POST else None)
        form.fields["destination"].queryset = destinations
        if "confirm" in request.POST and form.is_valid():
            allowed = self.allowed_tenant_ids(request, OPERATE)
            actor = Actor.for_user(request.user)
            for hold in holds:
                if allowed is not None and hold.tenant_id not in allowed:
                    deny(request, action="admin:capture ledger.hold", target=hold.id, target_tenant_id=hold.tenant_id,
                         reason="role does not allow this action")
                    self.message_user(request, f"{hold}: not allowed for your role", messages.ERROR)
                    continue
                try:
                    hold_capture(tenant=hold.tenant, hold_id=hold.id, destination_account_id=form.cleaned_data[
                        "destination"].id, actor=actor, reason=form.cleaned_data["reason"])
                    self.message_user(request, f"{hold.id}: captured.", messages.SUCCESS)
                except ZentraError as exc:
                    self.message_user(request, f"{hold.id}: {exc.detail} ({exc.code})", messages.ERROR)
            return None
        context = {**self.admin_site.each_context(request), "title": "Capture holds", "objects": holds, "form": form,
                   "action": "capture", "opts": self.model._meta, "verb": "capture",
                   "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
        return TemplateResponse(request, "admin/zentra/confirm_action.html", context)
