"""Django's admin app, with the back office's site as its default site (INSTALLED_APPS names
this instead of django.contrib.admin)."""

from django.contrib.admin.apps import AdminConfig


class ZentraAdminConfig(AdminConfig):
    default_site = "backoffice.site.ZentraAdminSite"
