"""Policy rules, providers and routes in the back office.

The admin never writes these rows itself: every save and every action goes through the
services of payments/services/configuration.py, with the operator's reason kept in the row's
history, so the admin and the API refuse the same mistakes the same way.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from tenants.admin_base import TenantScopedAdmin, form_errors_from, is_proposal, proposed_or_done
from tenants.roles import OPERATE
from zentra.errors import NotFound, ValidationFailed

from ..models import PolicyRule, Provider, ProviderRoute
from ..services.approvals import policy_rule_change_or_propose
from ..services.configuration import (
    policy_rule_check,
    provider_create,
    provider_update,
    route_circuit_close,
    route_create,
    route_update,
)

REASON_HELP = "Why: kept with the change in its history."


class ReasonedForm(forms.ModelForm):
    """A change form that asks why, like every careful action."""

    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP)


class ConfigurationAdmin(TenantScopedAdmin):
    """Saves call `create(values)` or `update(obj, changes)` (services), never `obj.save()`."""

    add_perm = change_perm = OPERATE
    editable: tuple[str, ...] = ()

    def save_model(self, request, obj, form, change):
        actor = Actor.for_user(request.user)
        values = {name: form.cleaned_data[name] for name in self.editable if name in form.cleaned_data}
        reason = form.cleaned_data["reason"]
        if change:
            changes = {name: values[name] for name in form.changed_data if name in values}
            saved = self.update(obj, changes, actor=actor, reason=reason)
        else:
            saved = self.create({"tenant": form.cleaned_data["tenant"], **values}, actor=actor, reason=reason)
        if is_proposal(saved):
            request._zentra_proposal = saved  # per request: the admin instance is shared by threads
            return
        obj.pk = saved.pk

    def create(self, values: dict[str, Any], *, actor: Actor, reason: str) -> Any:
        raise NotImplementedError

    def update(self, obj: Any, changes: dict[str, Any], *, actor: Actor, reason: str) -> Any:
        raise NotImplementedError


class PolicyRuleForm(ReasonedForm):
    class Meta:
        model = PolicyRule
        fields = ["tenant", "kind", "position", "enabled", "currency", "rail", "params", "description"]

    def clean(self):
        values = super().clean() or {}
        tenant = values.get("tenant") or getattr(self.instance, "tenant", None)
        if not self.errors and tenant is not None:
            try:
                policy_rule_check(tenant=tenant, kind=values["kind"], params=values.get("params"),
                                  currency=values.get("currency", ""), rail=values.get("rail", ""))
            except (ValidationFailed, NotFound) as exc:  # NotFound: a route the tenant does not have
                form_errors_from(self, exc)
        return values


@admin.register(PolicyRule)
class PolicyRuleAdmin(ConfigurationAdmin):
    form = PolicyRuleForm
    list_display = ["kind", "tenant", "position", "enabled", "currency", "rail", "params_table", "description", "id"]
    list_filter = ["kind", "enabled"]
    fields = ["tenant", "kind", "position", "enabled", "currency", "rail", "params", "description", "reason"]
    editable = ("kind", "position", "enabled", "currency", "rail", "params", "description")

    def get_readonly_fields(self, request, obj=None):
        return ["tenant"] if obj is not None else []

    # A tenant may ask for a second person on rule changes (tenants/approval_rules.py): the save
    # is then a proposal, and the operator lands on the approval, not on a rule that did not change.
    def create(self, values, *, actor, reason):
        tenant = values.pop("tenant")
        return policy_rule_change_or_propose(tenant=tenant, actor=actor, reason=reason, values=values)

    def update(self, obj, changes, *, actor, reason):
        return policy_rule_change_or_propose(tenant=obj.tenant, rule_id=obj.id, actor=actor, reason=reason,
                                             values=changes)

    def _saved(self, request, obj):
        proposal = getattr(request, "_zentra_proposal", None)
        if proposal is None:
            return None
        self.message_user(request, proposed_or_done(proposal), messages.WARNING)
        return HttpResponseRedirect(reverse("admin:audit_approval_change", args=[proposal.pk]))

    def response_add(self, request, obj, post_url_continue=None):
        return self._saved(request, obj) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        return self._saved(request, obj) or super().response_change(request, obj)

    def log_addition(self, request, obj, message):
        if getattr(request, "_zentra_proposal", None) is None:  # a proposal added nothing yet
            return super().log_addition(request, obj, message)
        return None


class ProviderForm(ReasonedForm):
    class Meta:
        model = Provider
        fields = ["tenant", "name", "mode", "outage", "settle_delay_seconds", "report_faults"]


class ProviderStateForm(forms.Form):
    mode = forms.ChoiceField(choices=[(Provider.APPROVE, "Approve"), (Provider.DECLINE, "Decline"),
                                      (Provider.TIMEOUT, "Time out")])
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text=REASON_HELP)


@admin.register(Provider)
class ProviderAdmin(ConfigurationAdmin):
    form = ProviderForm
    list_display = ["name", "tenant", "kind", "mode", "outage", "settle_delay_seconds"]
    fields = ["tenant", "name", "mode", "outage", "settle_delay_seconds", "report_faults", "reason"]
    editable = ("name", "mode", "outage", "settle_delay_seconds", "report_faults")
    actions = ["start_outage", "end_outage", "set_mode"]

    def get_readonly_fields(self, request, obj=None):
        return ["tenant", "name"] if obj is not None else []

    def create(self, values, *, actor, reason):
        return provider_create(actor=actor, reason=reason, **values)

    def update(self, obj, changes, *, actor, reason):
        changes.pop("name", None)
        return provider_update(tenant=obj.tenant, provider_id=obj.id, actor=actor, reason=reason, **changes)

    def _set(self, request, queryset, *, title: str, verb: str, **changes):
        return self.confirm_and_apply(request, queryset, title=title, verb=verb, apply=lambda p, values, actor:
                                      provider_update(tenant=p.tenant, provider_id=p.id, actor=actor,
                                                      reason=values["reason"], **changes))

    @admin.action(description="Start an outage (refuse every request)", permissions=["operate"])
    def start_outage(self, request, queryset):
        return self._set(request, queryset, title="Start an outage", verb="put in an outage", outage=True)

    @admin.action(description="End the outage", permissions=["operate"])
    def end_outage(self, request, queryset):
        return self._set(request, queryset, title="End the outage", verb="end the outage of", outage=False)

    @admin.action(description="Set how the sandbox answers…", permissions=["operate"])
    def set_mode(self, request, queryset):
        return self.confirm_and_apply(
            request, queryset, title="Set the sandbox mode", verb="set the mode of", form_class=ProviderStateForm,
            apply=lambda p, values, actor: provider_update(tenant=p.tenant, provider_id=p.id, actor=actor,
                                                           reason=values["reason"], mode=values["mode"]))


class CircuitFilter(admin.SimpleListFilter):
    title = "circuit"
    parameter_name = "circuit"

    def lookups(self, request, model_admin):
        return [("open", "Open (route skipped)"), ("closed", "Closed")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "open":
            return queryset.filter(down_until__gt=now)
        if self.value() == "closed":
            return queryset.exclude(down_until__gt=now)
        return queryset


class RouteForm(ReasonedForm):
    class Meta:
        model = ProviderRoute
        fields = ["tenant", "provider", "rail", "priority", "currencies", "enabled", "failure_threshold",
                  "cooldown_seconds"]


@admin.register(ProviderRoute)
class ProviderRouteAdmin(ConfigurationAdmin):
    form = RouteForm
    list_display = ["provider", "rail", "priority", "currencies", "enabled", "circuit", "consecutive_failures",
                    "tenant"]
    list_filter = [CircuitFilter, "rail", "enabled"]
    list_select_related = ["provider", "tenant"]
    fields = ["tenant", "provider", "rail", "priority", "currencies", "enabled", "failure_threshold",
              "cooldown_seconds", "consecutive_failures", "down_until", "reason"]
    readonly_fields = ["consecutive_failures", "down_until"]
    editable = ("provider", "rail", "priority", "currencies", "enabled", "failure_threshold", "cooldown_seconds")
    actions = ["reset_circuit"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant"] if obj is not None else list(self.readonly_fields)

    @staticmethod
    def _route_values(values: dict[str, Any]) -> dict[str, Any]:
        if "provider" in values:
            values["provider_id"] = values.pop("provider").id
        return values

    def create(self, values, *, actor, reason):
        return route_create(actor=actor, reason=reason, **self._route_values(values))

    def update(self, obj, changes, *, actor, reason):
        return route_update(tenant=obj.tenant, route_id=obj.id, actor=actor, reason=reason,
                            **self._route_values(changes))

    @admin.display(description="circuit")
    def circuit(self, obj):
        if obj.down_until and obj.down_until > timezone.now():
            return f"open until {obj.down_until:%H:%M:%S} UTC"
        return "closed"

    @admin.action(description="Close the circuit (mark routes up)", permissions=["operate"])
    def reset_circuit(self, request, queryset):
        return self.confirm_and_apply(
            request, queryset, title="Close circuits", verb="close the circuit of",
            apply=lambda r, values, actor: route_circuit_close(tenant=r.tenant, route_id=r.id, actor=actor,
                                                               reason=values["reason"]))
