from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.template.response import TemplateResponse

from audit.actors import Actor

from .admin_base import TenantScopedAdmin
from .models import ApiKey, Membership, Tenant
from .roles import MANAGE
from .services import api_key_create, api_key_revoke, membership_remove, membership_set


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_field = "pk"
    change_perm = MANAGE
    list_display = ["slug", "name", "id", "created_at"]
    search_fields = ["slug", "name", "id"]
    readonly_fields = ["id", "slug", "created_at"]
    fields = ["id", "slug", "name", "created_at"]

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
    readonly_fields = ["id", "masked", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["tenant", "name", "scope"]
        return ["id", "tenant", "name", "scope", "masked", "created_at", "created_by", "last_used_at", "revoked_at"]

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
        for api_key in queryset:
            api_key_revoke(api_key=api_key, actor=Actor.for_user(request.user))
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)

    def has_manage_permission(self, request, obj=None):
        return self._allowed(request, MANAGE, obj)
