from datetime import timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from audit.actors import Actor
from tenants.admin_base import EstimatedCountPaginator, ReadOnlyInline, TenantScopedAdmin, deny
from tenants.admin_filters import fixed_choices_filter
from tenants.roles import MANAGE, VIEW
from zentra.errors import ValidationFailed

from .event_types import EVENT_TYPES
from .models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from .services.endpoints import (
    endpoint_create,
    endpoint_disable,
    endpoint_enable,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_values_check,
)
from .services.replay import endpoint_redeliver_failed, event_redeliver


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    readonly_fields = ("id", "endpoint", "status", "attempts_count", "next_attempt_at", "completed_at")
    fields = readonly_fields


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    paginator = EstimatedCountPaginator  # millions of rows: no full count
    show_full_result_count = False
    list_display = ["type", "resource_id", "actor_name", "created_at", "tenant", "id"]
    list_filter = [fixed_choices_filter("type", "type", [(t, t) for t in sorted(EVENT_TYPES)])]
    search_fields = ["=id", "=resource_id", "=request_id"]
    readonly_fields = ("id", "tenant", "type", "resource_id", "actor_name", "request_id", "created_at", "data_table")
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
                       "next_attempt_at", "request_headers_table")
    fields = readonly_fields
    show_change_link = False


class WaitingFilter(admin.SimpleListFilter):
    title = "waiting"
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("hour", "Pending for over an hour")]

    def queryset(self, request, queryset):
        if self.value() == "hour":
            return queryset.filter(status=Delivery.PENDING, created_at__lte=timezone.now() - timedelta(hours=1))
        return queryset


class EndpointFilter(admin.SimpleListFilter):
    """The operator's endpoints (a small table), not DISTINCT over every delivery."""

    title = "endpoint"
    parameter_name = "endpoint__id__exact"  # the stock filter's, so links keep working

    def lookups(self, request, model_admin):
        ids = model_admin.allowed_tenant_ids(request, model_admin.view_perm)
        endpoints = WebhookEndpoint.objects.all() if ids is None else WebhookEndpoint.objects.filter(tenant_id__in=ids)
        return [(e.pk, e.url) for e in endpoints.order_by("url", "id")]

    def queryset(self, request, queryset):
        return queryset.filter(endpoint_id=self.value()) if self.value() else queryset


@admin.register(Delivery)
class DeliveryAdmin(TenantScopedAdmin):
    paginator = EstimatedCountPaginator  # millions of rows: no full count
    show_full_result_count = False
    list_display = ["id", "event_type", "endpoint_url", "status", "attempts_count", "next_attempt_at", "created_at"]
    list_filter = ["status", WaitingFilter, EndpointFilter]
    search_fields = ["=id", "=event__id", "=endpoint__id"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = ("id", "tenant", "event", "endpoint", "status", "attempts_count", "next_attempt_at",
                       "lease_owner", "lease_expires_at", "redelivery_of", "requested_by_name", "created_at",
                       "completed_at")
    fields = readonly_fields
    inlines = [AttemptInline]
    actions = ["redeliver"]

    @admin.display(description="event", ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="endpoint", ordering="endpoint__url")
    def endpoint_url(self, obj):
        return obj.endpoint.url

    def get_urls(self):
        return [path("<str:object_id>/redeliver/", self.admin_site.admin_view(self.redeliver_view),
                     name="webhooks_delivery_redeliver"), *super().get_urls()]

    def redeliver_view(self, request, object_id):
        """One delivery's "redeliver" (from its endpoint's page): the same confirmation page and
        service as the list action."""
        delivery = self.get_object(request, object_id)
        if not self.has_operate_permission(request, delivery):
            deny(request, action="admin:redeliver webhooks.delivery", target=str(object_id),
                 target_tenant_id=delivery.tenant_id, reason="the role does not allow redelivery")
            raise PermissionDenied
        response = self.redeliver(request, self.get_queryset(request).filter(pk=delivery.pk))
        return response or HttpResponseRedirect(
            reverse("admin:webhooks_webhookendpoint_change", args=[delivery.endpoint_id]))

    @admin.action(description="Redeliver the event to this endpoint", permissions=["operate"])
    def redeliver(self, request, queryset):
        return self.confirm_and_apply(
            request, queryset, title="Redeliver", verb="redeliver",
            apply=lambda d, values, actor: event_redeliver(tenant=d.tenant, event_id=d.event_id,
                                                           endpoint_id=d.endpoint_id, actor=actor))


class RedeliverSinceForm(forms.Form):
    since = forms.DateTimeField(help_text="Redeliver every event whose delivery failed since then (UTC).")


class EndpointAddForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="Where events are POSTed (http or https).")
    event_types_text = forms.CharField(
        label="Event types", required=False, initial="*",
        help_text='Comma-separated: types (hold.created), families (hold.*) or * for every event.')

    class Meta:
        model = WebhookEndpoint
        fields = ["tenant", "url", "description"]

    def patterns(self) -> list[str]:
        return [p.strip() for p in self.cleaned_data.get("event_types_text", "").split(",") if p.strip()] or ["*"]

    def clean(self):
        values = super().clean() or {}
        if not self.errors:
            try:  # the service's rule, shown on the fields it names (event_types -> the text field)
                endpoint_values_check(values["url"], self.patterns())
            except ValidationFailed as exc:
                for error in exc.errors or []:
                    field = {"event_types": "event_types_text"}.get(error["field"], error["field"])
                    self.add_error(field if field in self.fields else None, error["message"])
        return values


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    """Owners create endpoints (the secret is shown once) and rotate secrets; operators disable,
    enable and redeliver; anyone who may see an endpoint can send it a test event and sees its
    deliveries with their attempts."""

    add_perm = MANAGE
    list_display = ["url", "tenant", "status", "event_types_shown", "failing_since", "last_success_at", "id"]
    list_filter = ["status"]
    search_fields = ["=id", "url", "description"]
    readonly_fields = ("id", "tenant", "url", "event_types_shown", "description", "status", "disabled_reason",
                       "failing_since", "last_success_at", "previous_secret_expires_at", "created_at", "deleted_at",
                       "recent_deliveries")
    fields = readonly_fields
    actions = ["send_test", "disable", "enable", "redeliver_failed", "rotate_secret"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = EndpointAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["tenant", "url", "event_types_text", "description"] if obj is None else list(self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else list(self.readonly_fields)

    def save_model(self, request, obj, form, change):
        endpoint, secret = endpoint_create(tenant=obj.tenant, url=obj.url, description=obj.description,
                                           event_types_filter=form.patterns(), actor=Actor.for_user(request.user))
        obj.pk = endpoint.pk
        request._zentra_new_secrets = [(endpoint, secret)]

    def response_add(self, request, obj, post_url_continue=None):
        secrets = getattr(request, "_zentra_new_secrets", None)
        return self._secrets_shown(request, secrets, title="Webhook endpoint created") if secrets else \
            super().response_add(request, obj, post_url_continue)

    def _secrets_shown(self, request, secrets, *, title: str):
        context = {**self.admin_site.each_context(request), "title": title, "secrets": secrets,
                   "opts": self.model._meta}
        response = TemplateResponse(request, "admin/webhooks/webhookendpoint/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.display(description="event types")
    def event_types_shown(self, obj):
        return ", ".join("* (every event)" if pattern == "*" else pattern for pattern in obj.event_types)

    @admin.display(description="recent deliveries (newest first)")
    def recent_deliveries(self, obj):
        deliveries = (obj.deliveries.select_related("event").prefetch_related("attempts").order_by("-id")[:30])
        return render_to_string("admin/webhooks/webhookendpoint/deliveries.html",
                                {"deliveries": deliveries, "endpoint": obj})

    def has_send_test_permission(self, request, obj=None):
        return self._allowed(request, VIEW, obj)

    def has_manage_permission(self, request, obj=None):
        return self._allowed(request, MANAGE, obj)

    @admin.action(description="Send a test event", permissions=["send_test"])
    def send_test(self, request, queryset):
        def send(endpoint, values, actor):
            delivery = endpoint_send_test(tenant=endpoint.tenant, endpoint_id=endpoint.id, actor=actor)
            return f"{endpoint.url}: test event {delivery.event_id} queued ({delivery.id})."

        return self.confirm_and_apply(request, queryset, title="Send a test event", verb="send a test event to",
                                      apply=send, perm=VIEW, form_class=forms.Form)

    @admin.action(description="Rotate the signing secret", permissions=["manage"])
    def rotate_secret(self, request, queryset):
        rotated = []

        def rotate(endpoint, values, actor):
            endpoint, secret = endpoint_rotate_secret(tenant=endpoint.tenant, endpoint_id=endpoint.id, actor=actor)
            rotated.append((endpoint, secret))

        response = self.confirm_and_apply(request, queryset, title="Rotate signing secrets",
                                          verb="rotate the secret of", apply=rotate, perm=MANAGE,
                                          form_class=forms.Form)
        if rotated:
            return self._secrets_shown(request, rotated, title="Signing secrets rotated")
        return response

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
