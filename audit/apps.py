from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit evidence"

    def ready(self) -> None:
        from . import history  # noqa: F401  (connects the history actor stamp)
