from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        # Actions that wait for a second person, registered where audit's approvals can run them.
        from .services import approvals  # noqa: F401
