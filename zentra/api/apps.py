from django.apps import AppConfig


class ApiEdgeConfig(AppConfig):
    name = "zentra.api"
    label = "api"
    verbose_name = "API edge"
