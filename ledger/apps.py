from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Ledger"

    def ready(self) -> None:
        from . import admin_holds  # noqa: F401  (registers the holds admin beside ledger/admin.py)
