from django.contrib import admin

from tenants.admin_base import TenantScopedAdmin

from .models import Event


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    list_display = ["id", "type", "tenant", "resource_id", "actor", "created_at"]
    list_filter = ["type"]
    search_fields = ["id", "resource_id", "request_id"]
    readonly_fields = ["id", "tenant", "type", "resource_id", "actor", "request_id", "created_at", "data"]
    fields = readonly_fields
