from datetime import timedelta

from django import forms
from django.contrib import admin
from django.utils import timezone

from tenants.admin_base import ReadOnlyInline, TenantScopedAdmin

from .models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from .services.endpoints import endpoint_disable, endpoint_enable
from .services.replay import endpoint_redeliver_failed, event_redeliver


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    readonly_fields = ("id", "endpoint", "status", "attempts_count", "next_attempt_at", "completed_at")
    fields = readonly_fields


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    list_display = ["id", "type", "tenant", "resource_id", "actor", "created_at"]
    list_filter = ["type"]
    search_fields = ["=id", "=resource_id", "request_id"]
    readonly_fields = ("id", "tenant", "type", "resource_id", "actor", "request_id", "created_at", "data")
    fields = readonly_fields
    inlines = [DeliveryInline]
    actions = ["redeliver"]

    @admin.action(description="Redeliver to every subscribed endpoint", permissions=["operate"])
    def redeliver(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Redeliver events", verb="redeliver",
                                      apply=lambda event, values, actor: event_redeliver(
                                          tenant=event.tenant, event_id=event.id, actor=actor))


class AttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    readonly_fields = ("number", "attempted_at", "status_code", "duration_ms", "error", "response_body",
                       "next_attempt_at", "request_headers")
    fields = readonly_fields
    show_change_link = False


@admin.register(Delivery)
class DeliveryAdmin(TenantScopedAdmin):
    list_display = ["id", "event", "endpoint", "status", "attempts_count", "next_attempt_at", "created_at",
                    "completed_at"]
    # RelatedOnly: the endpoint filter lists only endpoints of deliveries this operator can see.
    list_filter = ["status", ("endpoint", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=id", "=event__id", "=endpoint__id"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = ("id", "tenant", "event", "endpoint", "status", "attempts_count", "next_attempt_at",
                       "lease_owner", "lease_expires_at", "redelivery_of", "requested_by", "created_at",
                       "completed_at")
    fields = readonly_fields
    inlines = [AttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Redeliver the event to this endpoint", permissions=["operate"])
    def redeliver(self, request, queryset):
        return self.confirm_and_apply(
            request, queryset, title="Redeliver", verb="redeliver",
            apply=lambda d, values, actor: event_redeliver(tenant=d.tenant, event_id=d.event_id,
                                                           endpoint_id=d.endpoint_id, actor=actor))


class RedeliverSinceForm(forms.Form):
    since = forms.DateTimeField(help_text="Redeliver every event whose delivery failed since then (UTC).")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    list_display = ["id", "url", "tenant", "status", "failing_since", "last_success_at", "disabled_reason"]
    list_filter = ["status"]
    search_fields = ["=id", "url", "description"]
    readonly_fields = ("id", "tenant", "url", "event_types", "description", "status", "disabled_reason",
                       "failing_since", "last_success_at", "previous_secret_expires_at", "created_at", "deleted_at")
    fields = readonly_fields
    actions = ["disable", "enable", "redeliver_failed"]

    @admin.action(description="Disable selected endpoints", permissions=["operate"])
    def disable(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Disable endpoints", verb="disable",
                                      apply=lambda e, values, actor: endpoint_disable(
                                          tenant=e.tenant, endpoint_id=e.id, actor=actor, reason=values["reason"]))

    @admin.action(description="Re-enable selected endpoints", permissions=["operate"])
    def enable(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Re-enable endpoints", verb="re-enable",
                                      apply=lambda e, values, actor: endpoint_enable(
                                          tenant=e.tenant, endpoint_id=e.id, actor=actor, reason=values["reason"]))

    @admin.action(description="Redeliver everything that failed since…", permissions=["operate"])
    def redeliver_failed(self, request, queryset):
        def redeliver(endpoint, values, actor):
            queued = endpoint_redeliver_failed(tenant=endpoint.tenant, endpoint_id=endpoint.id,
                                                since=values["since"], actor=actor)
            return f"{endpoint.id}: {len(queued)} event(s) queued again."

        return self.confirm_and_apply(request, queryset, title="Redeliver failed events", verb="redeliver",
                                      apply=redeliver, form_class=RedeliverSinceForm,
                                      initial={"since": timezone.now() - timedelta(days=1)})
