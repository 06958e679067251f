from django.contrib import admin

from audit.actors import Actor
from tenants.admin_base import TenantScopedAdmin
from tenants.roles import OPERATE

from .currencies import format_minor
from .models import Account
from .selectors import account_balances
from .services.accounts import account_close, account_create, account_freeze, account_unfreeze


@admin.register(Account)
class AccountAdmin(TenantScopedAdmin):
    add_perm = OPERATE
    list_display = ["id", "name", "customer", "tenant", "account_type", "currency", "status", "posted", "available"]
    list_filter = ["status", "account_type", "currency", "is_system"]
    search_fields = ["id", "name", "customer"]
    actions = ["freeze", "unfreeze", "close"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["tenant", "customer", "name", "currency", "account_type", "normal_balance", "allow_overdraft",
                    "overdraft_limit", "metadata"]
        return ["id", "tenant", "customer", "name", "currency", "account_type", "normal_balance", "status",
                "allow_overdraft", "overdraft_limit", "is_system", "posted", "held", "available", "metadata",
                "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return self.get_fields(request, obj)

    @admin.display(description="posted")
    def posted(self, obj):
        return format_minor(obj.posted_balance, obj.currency)

    @admin.display(description="held")
    def held(self, obj):
        return format_minor(account_balances(obj).held, obj.currency)

    @admin.display(description="available")
    def available(self, obj):
        available = account_balances(obj).available
        return "no limit" if available is None else format_minor(available, obj.currency)

    def save_model(self, request, obj, form, change):
        account = account_create(
            tenant=obj.tenant, currency=obj.currency, account_type=obj.account_type, customer=obj.customer,
            name=obj.name, normal_balance=obj.normal_balance, allow_overdraft=obj.allow_overdraft,
            overdraft_limit=obj.overdraft_limit, metadata=obj.metadata, actor=Actor.for_user(request.user))
        obj.pk = account.pk

    @admin.action(description="Freeze selected accounts", permissions=["operate"])
    def freeze(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Freeze accounts", verb="freeze",
                                      apply=lambda a, reason, actor: account_freeze(account=a, actor=actor, reason=reason))

    @admin.action(description="Unfreeze selected accounts", permissions=["operate"])
    def unfreeze(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Unfreeze accounts", verb="unfreeze",
                                      apply=lambda a, reason, actor: account_unfreeze(account=a, actor=actor, reason=reason))

    @admin.action(description="Close selected accounts", permissions=["operate"])
    def close(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Close accounts", verb="close",
                                      apply=lambda a, reason, actor: account_close(account=a, actor=actor, reason=reason))
