from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.template.response import TemplateResponse

from audit.actors import Actor

from .admin_base import TenantScopedAdmin, deny
from .models import ApiKey, Membership, Tenant
from .roles import MANAGE
from .services.api_keys import api_key_create, api_key_revoke
from .services.members import membership_remove, membership_set
from .services.tenants import tenant_rate_limits_set, tenant_rename


class TenantForm(forms.ModelForm):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why: kept with the change in its history.")

    class Meta:
        model = Tenant
        fields = ["name"]


RATE_LIMIT_FIELDS = ["rate_limit_per_second", "rate_limit_per_minute"]


class PlatformTenantForm(TenantForm):
    """The superuser's form: also the tenant's request budget per API key."""

    class Meta(TenantForm.Meta):
        fields = ["name", *RATE_LIMIT_FIELDS]


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_field = "pk"
    change_perm = MANAGE
    form = TenantForm
    list_display = ["slug", "name", "id", "rate_limits", "created_at"]
    search_fields = ["slug", "name", "id"]
    readonly_fields = ["id", "slug", "created_at"]

    def get_fields(self, request, obj=None):
        # Rate limits are the platform's to set (tenants/services/tenants.py): owners see none.
        limits = RATE_LIMIT_FIELDS if request.user.is_superuser else []
        return ["id", "slug", "name", *limits, "created_at", "reason"]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = PlatformTenantForm if request.user.is_superuser else TenantForm
        return super().get_form(request, obj, **kwargs)

    @admin.display(description="rate limits")
    def rate_limits(self, obj):
        if obj.rate_limit_per_second is None and obj.rate_limit_per_minute is None:
            return "default"
        return f"{obj.rate_limit_per_second or 'default'}/s, {obj.rate_limit_per_minute or 'default'}/min"

    def save_model(self, request, obj, form, change):
        actor, reason = Actor.for_user(request.user), form.cleaned_data["reason"]
        limits_changed = any(name in form.changed_data for name in RATE_LIMIT_FIELDS)
        if "name" in form.changed_data or not limits_changed:
            tenant_rename(tenant=obj, name=form.cleaned_data["name"], actor=actor, reason=reason)
        if limits_changed:
            tenant_rate_limits_set(tenant=obj, per_second=form.cleaned_data["rate_limit_per_second"],
                                   per_minute=form.cleaned_data["rate_limit_per_minute"], actor=actor, reason=reason)

    def has_add_permission(self, request):
        # New tenants come from `manage.py bootstrap_tenant` (system accounts, first key).
        return False


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    add_perm = change_perm = delete_perm = MANAGE
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "tenant__slug"]
    fields = ["tenant", "user", "role"]

    def get_readonly_fields(self, request, obj=None):
        return ["tenant", "user"] if obj is not None else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            # Staff already in one of the manager's tenants, or in none yet: never a list of
            # every other tenant's people.
            ids = self.allowed_tenant_ids(request, MANAGE)
            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True, is_superuser=False).filter(
                Q(memberships__tenant_id__in=ids) | Q(memberships__isnull=True)).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        saved = membership_set(tenant=obj.tenant, user=obj.user, role=obj.role, actor=Actor.for_user(request.user))
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        membership_remove(membership=obj, actor=Actor.for_user(request.user))

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            membership_remove(membership=membership, actor=Actor.for_user(request.user))


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    add_perm = MANAGE
    view_perm = MANAGE
    list_display = ["name", "tenant", "masked", "scope", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "id"]
    readonly_fields = ["id", "masked", "created_at", "created_by_name", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["tenant", "name", "scope"]
        return ["id", "tenant", "name", "scope", "masked", "created_at", "created_by_name", "last_used_at",
                "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["tenant", "name", "scope"] if obj is not None else [])

    @admin.display(description="key")
    def masked(self, obj):
        return f"zk_{obj.prefix}_…"

    def save_model(self, request, obj, form, change):
        api_key, raw = api_key_create(tenant=obj.tenant, name=obj.name, scope=obj.scope,
                                      actor=Actor.for_user(request.user))
        obj.pk = api_key.pk
        obj.prefix = api_key.prefix
        request._zentra_new_api_key = raw

    def response_add(self, request, obj, post_url_continue=None):
        raw = getattr(request, "_zentra_new_api_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "title": "API key created", "api_key": obj,
                   "raw_key": raw, "opts": self.model._meta}
        response = TemplateResponse(request, "admin/tenants/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected API keys", permissions=["manage"])
    def revoke(self, request, queryset):
        return self.confirm_and_apply(
            request, queryset, title="Revoke API keys", verb="revoke", perm=MANAGE,
            apply=lambda key, values, actor: api_key_revoke(api_key=key, actor=actor, reason=values["reason"]))

    def has_manage_permission(self, request, obj=None):
        return self._allowed(request, MANAGE, obj)


# Users and groups are the platform's, not a tenant's: only the platform superuser manages them.
# Operators reach people through memberships, which the MembershipAdmin scopes to their tenants.
class PlatformOnlyAdmin(admin.ModelAdmin):
    def _platform(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self._platform(request)

    def has_view_permission(self, request, obj=None):
        return self._platform(request)

    def has_add_permission(self, request):
        return self._platform(request)

    def has_change_permission(self, request, obj=None):
        return self._platform(request)

    def has_delete_permission(self, request, obj=None):
        return self._platform(request)

    def _refused(self, request, object_id=None):
        deny(request, action=f"admin:{request.method.lower()} {self.model._meta.label_lower}",
             target=str(object_id or ""), reason="only the platform superuser manages users and groups")
        raise PermissionDenied

    def changelist_view(self, request, extra_context=None):
        if not self._platform(request):
            self._refused(request)
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if not self._platform(request):
            self._refused(request, object_id)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        # UserAdmin refuses its add page before the change form is reached.
        if not self._platform(request):
            self._refused(request)
        return super().add_view(request, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        if not self._platform(request):
            self._refused(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        if not self._platform(request):
            self._refused(request, object_id)
        return super().history_view(request, object_id, extra_context)


for _model, _admin_class in ((get_user_model(), UserAdmin), (Group, GroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, type(f"Platform{_admin_class.__name__}", (PlatformOnlyAdmin, _admin_class), {}))
