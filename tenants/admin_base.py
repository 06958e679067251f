"""The one ModelAdmin base every admin class uses: everything scoped to the operator's tenants.

Querysets, object pages, history pages, foreign-key choices and filters only reach tenants on
which the operator holds the needed guardian object permission. An object of another tenant
answers 404, exactly like a missing one, and leaves an AccessDenial.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.functional import cached_property
from simple_history.admin import SimpleHistoryAdmin

from audit.actors import Actor
from audit.context import current_request_id
from audit.models import Approval
from backoffice.templatetags.zentra import actor_name, json_table
from ledger.currencies import format_minor
from zentra.errors import ZentraError

from .admin_filters import TenantListFilter
from .models import Tenant
from .roles import OPERATE, VIEW
from .selectors import object_not_found, tenant_ids_for_user, user_scope
from .services.denials import staff_denial_record


def deny(request, *, action: str, target: str = "", target_tenant_id: str = "", reason: str) -> None:
    """One AccessDenial per refused admin request, naming every tenant of the user (so each of
    their compliance reviewers sees it) and the user's roles."""
    if getattr(request, "_zentra_denied", False):
        return
    request._zentra_denied = True
    staff_denial_record(user=request.user, actor=Actor.for_user(request.user), action=action, target=target,
                        target_tenant_id=target_tenant_id, reason=reason,
                        request_id=getattr(request, "request_id", None) or current_request_id())


def form_errors_from(form: forms.BaseForm, exc: ZentraError) -> None:
    """A service's refusal, shown on the form fields it names (the rest above the form)."""
    placed = False
    for error in exc.errors or []:
        field = (error.get("field") or "").split(".", 1)[0].split("[", 1)[0]
        form.add_error(field if field in form.fields else None, error["message"])
        placed = True
    if not placed:
        form.add_error(None, f"{exc.detail} ({exc.code})")


def is_proposal(result) -> bool:
    return isinstance(result, Approval)


def proposed_or_done(result, done: str = "") -> str:
    """What an operator reads after an action that may have waited for a second person
    (tenants/approval_rules.py): the proposal and where it waits, or what was done."""
    if is_proposal(result):
        return (f"Proposed, waiting for a second person: {result.summary} ({result.id}; Approvals, on the "
                "dashboard). Nothing has changed yet.")
    return done


def _json_shown(name: str):
    @admin.display(description=name.replace("_", " "))
    def show(self, obj):
        return json_table(getattr(obj, name))

    return show


def _actor_shown(name: str, label: str):
    @admin.display(description=label)
    def show(self, obj):
        return actor_name(getattr(obj, name)) if getattr(obj, name) else "—"

    return show


class Readable:
    """How people read what the models store: JSON as key/value tables, actors by name."""

    metadata_table = _json_shown("metadata")
    params_table = _json_shown("params")
    data_table = _json_shown("data")
    request_headers_table = _json_shown("request_headers")
    actor_name = _actor_shown("actor", "actor")
    resolved_by_name = _actor_shown("resolved_by", "resolved by")
    created_by_name = _actor_shown("created_by", "created by")
    requested_by_name = _actor_shown("requested_by", "requested by")
    @admin.display(description="actor")
    def history_actor_name(self, obj):
        # Evidence pages name the actor and keep its stable id beside the name.
        return f"{actor_name(obj.history_actor)} ({obj.history_actor})" if obj.history_actor else "—"

    @admin.display(description="account", ordering="account__name")
    def account_label(self, obj):
        return account_label_of(obj.account)

    @admin.display(description="amount", ordering="amount")
    def amount_shown(self, obj):
        return format_minor(obj.amount, obj.currency)


def account_label_of(account) -> str:
    return account.name or account.customer or f"{account.account_type} {account.currency}"


class ReadOnlyInline(Readable, admin.TabularInline):
    """Rows shown under a parent the operator may already see (the parent's admin scopes it)."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EstimatedCountPaginator(Paginator):
    """Lists of millions of rows (entries, transactions, request records) open without counting
    them: the rows are counted up to a bound (a short index range), and past it the planner's
    estimate stands in for the exact count, so the page never costs a scan of the table."""

    EXACT_UP_TO = 10_000

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if not isinstance(rows, QuerySet):
            return super().count
        unordered = rows.order_by()
        bounded = unordered[: self.EXACT_UP_TO + 1].count()
        if bounded <= self.EXACT_UP_TO:
            return bounded
        sql, params = unordered.values("pk").query.sql_with_params()
        with connections[rows.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        estimate = int((plan[0] if isinstance(plan, list) else json.loads(plan)[0])["Plan"]["Plan Rows"])
        # Stale statistics can estimate fewer rows than were just seen.
        return max(estimate, bounded)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Why: kept with the change as evidence.")


class TenantScopedAdmin(Readable, SimpleHistoryAdmin):
    # The column holding the owning tenant's id.
    tenant_field = "tenant_id"
    view_perm = VIEW
    add_perm: str | None = None
    change_perm: str | None = None
    delete_perm: str | None = None
    # history_user is empty when an API key or the system acted; the actor column always says who.
    history_list_display = ["history_actor_name"]


    # --- which tenants ------------------------------------------------------------------

    def allowed_tenant_ids(self, request, perm: str) -> set[str] | None:
        """None means every tenant (the platform superuser)."""
        if request.user.is_superuser:
            return None
        return tenant_ids_for_user(request.user, perm)

    def tenant_of(self, obj) -> str:
        return obj.pk if self.tenant_field == "pk" else getattr(obj, self.tenant_field)

    def _allowed(self, request, perm: str | None, obj=None) -> bool:
        if perm is None or not request.user.is_active or not request.user.is_staff:
            return False
        ids = self.allowed_tenant_ids(request, perm)
        if ids is None:
            return True
        if obj is None:
            return bool(ids)
        return self.tenant_of(obj) in ids

    def scope(self, request, queryset, perm: str | None = None):
        ids = self.allowed_tenant_ids(request, perm or self.view_perm)
        if ids is None:
            return queryset
        return queryset.filter(**{f"{self.tenant_field}__in": ids})

    # --- Django admin permission hooks ----------------------------------------------------

    def get_queryset(self, request):
        return self.scope(request, super().get_queryset(request))

    def has_module_permission(self, request):
        return self._allowed(request, self.view_perm)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, self.view_perm, obj) or self.has_change_permission(request, obj)

    def has_add_permission(self, request):
        return self._allowed(request, self.add_perm)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, self.change_perm, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, self.delete_perm, obj)

    def has_operate_permission(self, request, obj=None):
        return self._allowed(request, OPERATE, obj)

    # --- objects of other tenants: 404 and evidence ----------------------------------------

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            return obj
        # The one lookup's refusal path: evidence when the id belongs to another tenant.
        object_not_found(self.model, object_id, scope=user_scope(request.user, self.view_perm),
                         action=f"admin:view {self.model._meta.label_lower}", label=str(self.model._meta.verbose_name),
                         tenant_field="pk" if self.tenant_field == "pk" else self.tenant_field)
        raise Http404(f"No {self.model._meta.verbose_name} with id {object_id!r}")

    def _history_tracked(self) -> bool:
        return hasattr(self.model._meta, "simple_history_manager_attribute")

    def history_view(self, request, object_id, extra_context=None):
        self.get_object(request, unquote(object_id))
        if not self._history_tracked():
            # Events and evidence rows are immutable and have no history table; simple-history's
            # page would crash on them, Django's own (admin log entries) answers instead.
            return admin.ModelAdmin.history_view(self, request, object_id,
                                                 extra_context={"revert_disabled": True, **(extra_context or {})})
        return super().history_view(request, object_id, extra_context=extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if not self._history_tracked():
            raise Http404("This object keeps no versions")
        if request.method not in ("GET", "HEAD"):
            # simple-history saves a POSTed version form through save_model ("revert") whatever
            # SIMPLE_HISTORY_REVERT_DISABLED says, and checks only the *view* permission: a viewer
            # could rewrite a membership (or create an account). History pages are read-only.
            deny(request, action=f"admin:revert {self.model._meta.label_lower}", target=str(obj.pk),
                 target_tenant_id=self.tenant_of(obj), reason="history versions are read-only")
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context=extra_context)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            deny(request, action=f"admin:list {self.model._meta.label_lower}", reason="no role grants this page")
            raise PermissionDenied
        wanted = request.GET.get("tenant")
        if wanted:
            ids = self.allowed_tenant_ids(request, self.view_perm)
            if ids is not None and wanted not in ids:
                if Tenant.objects.filter(pk=wanted).exists():
                    deny(request, action=f"admin:list {self.model._meta.label_lower}", target=wanted,
                         target_tenant_id=wanted, reason="tenant outside the operator's tenants")
                raise Http404("No such tenant")
        if request.method == "POST":
            # An action the role is not offered (a viewer's forged "freeze"): Django would only
            # say "no action selected"; it is a refusal, and it leaves evidence.
            offered = self.get_actions(request)
            forged = [name for name in request.POST.getlist("action") if name and name not in offered]
            if forged:
                deny(request, action=f"admin:{forged[0]} {self.model._meta.label_lower}",
                     target=",".join(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))[:200],
                     reason="the role is not offered this action")
                raise PermissionDenied
        return super().changelist_view(request, extra_context=extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ZentraError as exc:
            # A service refused what the form let through: a message, never a 500 (STYLE rule 5).
            # The change form's transaction has rolled back, so nothing was written.
            self.message_user(request, f"{exc.detail} ({exc.code})", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        perm = self.change_perm or self.add_perm or self.view_perm
        ids = self.allowed_tenant_ids(request, perm)
        if ids is not None:
            if related is Tenant:
                kwargs["queryset"] = Tenant.objects.filter(pk__in=ids)
            elif any(f.name == "tenant" for f in related._meta.get_fields()):
                kwargs["queryset"] = related._default_manager.filter(tenant_id__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if self.tenant_field != "pk" and TenantListFilter not in filters:
            filters.insert(0, TenantListFilter)
        return filters

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- careful actions ------------------------------------------------------------------

    def confirm_and_apply(self, request, queryset, *, title: str, verb: str, apply, perm: str = OPERATE,
                          form_class=ReasonForm, prepare_form=None, initial: dict | None = None):
        """An action with a confirmation page (a reason, or the fields of `form_class`);
        `apply(obj, values, actor)` calls a service with the form's cleaned values, and a text it
        returns is shown to the operator. Objects the operator may not act on are refused one
        by one, with evidence."""
        confirmed = "confirm" in request.POST
        form = form_class(request.POST if confirmed else None, initial=initial)
        if prepare_form is not None:
            prepare_form(form)
        if confirmed and form.is_valid():
            actor = Actor.for_user(request.user)
            allowed = self.allowed_tenant_ids(request, perm)
            done = 0
            for obj in queryset:
                if allowed is not None and self.tenant_of(obj) not in allowed:
                    deny(request, action=f"admin:{verb} {self.model._meta.label_lower}", target=str(obj.pk),
                         target_tenant_id=self.tenant_of(obj), reason="role does not allow this action")
                    self.message_user(request, f"{obj}: not allowed for your role", messages.ERROR)
                    continue
                try:
                    outcome = apply(obj, form.cleaned_data, actor)
                except ZentraError as exc:
                    self.message_user(request, f"{obj}: {exc.detail} ({exc.code})", messages.ERROR)
                    continue
                if is_proposal(outcome):
                    self.message_user(request, proposed_or_done(outcome), messages.WARNING)
                    continue
                if isinstance(outcome, str):
                    self.message_user(request, outcome, messages.SUCCESS)
                done += 1
            if done:
                self.message_user(request, f"{verb.capitalize()}: {done} done.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "objects": list(queryset),
            "form": form,
            "action": request.POST.get("action"),
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "verb": verb,
        }
        return TemplateResponse(request, "admin/zentra/confirm_action.html", context)
