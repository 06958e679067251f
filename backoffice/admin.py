"""Staff sign-in records in the admin, for platform superusers: failed sign-ins and lockouts
(django-axes' models, read-only here), sign-ins, and the StaffSecurityEvent evidence.

A lockout is lifted only through the "Lift the lockout" action, which asks for a reason and
leaves a StaffSecurityEvent naming who lifted whose lockout; deleting attempt rows (axes' own
admin) would lift it without a trace, so nothing here deletes.
"""

from __future__ import annotations

from dataclasses import dataclass

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from audit.actors import Actor
from tenants.admin_base import ReasonForm

from .models import StaffSecurityEvent
from .services.staff_logins import login_lockout_reset


class SuperusersReadOnly:
    """Sign-in records span every tenant: the platform's superusers read them, no one edits."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@dataclass(frozen=True)
class _Lockout:
    """One row of the confirmation page."""

    pk: int
    text: str

    def __str__(self) -> str:
        return self.text


@admin.register(AccessAttempt)
class LockoutAdmin(SuperusersReadOnly, AccessAttemptAdmin):
    actions = ["lift_lockout"]

    def has_lift_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    @admin.action(description="Lift the lockout (the login may sign in again from that address)",
                  permissions=["lift"])
    def lift_lockout(self, request, queryset):
        attempts = list(queryset.order_by("username", "ip_address"))
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            actor = Actor.for_user(request.user)
            pairs = dict.fromkeys((attempt.username, attempt.ip_address) for attempt in attempts)
            for username, address in pairs:
                event = login_lockout_reset(username=username, ip_address=address, actor=actor,
                                            reason=form.cleaned_data["reason"])
                self.message_user(request, f"Lockout of {username or '(no username)'} from {address or '?'} "
                                           f"lifted: {event.detail}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Lift the lockout",
            "objects": [_Lockout(attempt.pk, f"{attempt.username or '(no username)'} from {attempt.ip_address}: "
                                             f"{attempt.failures_since_start} failed sign-ins, the last at "
                                             f"{attempt.attempt_time:%Y-%m-%d %H:%M} UTC") for attempt in attempts],
            "form": form,
            "action": request.POST.get("action"),
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "verb": "lift the lockout of",
        }
        return TemplateResponse(request, "admin/zentra/confirm_action.html", context)


@admin.register(AccessFailureLog)
class FailedSignInAdmin(SuperusersReadOnly, AccessFailureLogAdmin):
    """Every failed sign-in, kept when a lockout is lifted."""


@admin.register(AccessLog)
class SignInAdmin(SuperusersReadOnly, AccessLogAdmin):
    pass


@admin.register(StaffSecurityEvent)
class StaffSecurityEventAdmin(SuperusersReadOnly, admin.ModelAdmin):
    list_display = ["created_at", "kind", "username", "actor_label", "ip_address", "detail", "reason"]
    list_filter = ["kind"]
    search_fields = ["=username", "=actor_label", "=request_id"]
    date_hierarchy = "created_at"


from . import admin_exports  # noqa: E402, F401  (registers the evidence exports' admin)
