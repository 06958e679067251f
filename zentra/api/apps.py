from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _database_security(sender, using: str = "default", **kwargs) -> None:
    # After every migrate: row-level security on new tables, the application role's grants.
    from django.db import connections

    from zentra.db.security import security_apply

    if using == "default":
        security_apply(connections[using])


class ApiEdgeConfig(AppConfig):
    name = "zentra.api"
    label = "api"
    verbose_name = "API edge"

    def ready(self) -> None:
        post_migrate.connect(_database_security, sender=self, dispatch_uid="zentra_database_security")
