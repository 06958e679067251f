from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Ledger"

    def ready(self) -> None:
        # Actions that wait for a second person, registered where audit's approvals can run them.
        from .services import approvals, breaks  # noqa: F401
