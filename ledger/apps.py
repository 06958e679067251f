from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Ledger"

    def ready(self) -> None:
        from . import admin_holds, admin_payments  # noqa: F401  (admin modules beside ledger/admin.py)
