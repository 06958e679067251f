"""List filters shared by every list of money."""

from django.contrib import admin

from ..models import Account


class CurrencyListFilter(admin.SimpleListFilter):
    """The currencies of the operator's accounts. The stock filter reads DISTINCT currency over
    the listed table itself (seconds at millions of entries) and offers other tenants' codes;
    accounts are few and scoped like everything else."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        ids = model_admin.allowed_tenant_ids(request, model_admin.view_perm)
        accounts = Account.objects.all() if ids is None else Account.objects.filter(tenant_id__in=ids)
        return [(code, code) for code in accounts.order_by("currency").values_list("currency", flat=True).distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value()) if self.value() else queryset
