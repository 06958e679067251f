import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import setup_logging

from zentra.env import load_local_env

# Before the schedule below reads the environment: a developer's .env counts here too.
load_local_env()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zentra.settings")

app = Celery("zentra")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # acks_late: a task whose worker dies is delivered again; tasks are idempotent services.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    timezone="UTC",
    # Publishing must fail fast when Redis is down: the state change has committed already and
    # the periodic sweeps catch up; a request must not hang on the broker.
    broker_transport_options={"visibility_timeout": 3600, "max_retries": 1, "interval_start": 0,
                              "interval_step": 0.2, "interval_max": 0.5, "socket_connect_timeout": 1,
                              "socket_timeout": 5},
    beat_schedule={
        "relay-webhooks": {
            "task": "webhooks.tasks.relay",
            "schedule": float(os.environ.get("ZENTRA_WEBHOOK_RELAY_INTERVAL_SECONDS") or 5),
        },
        "sandbox-providers": {
            "task": "payments.tasks.sandbox_providers_tick",
            "schedule": float(os.environ.get("ZENTRA_SANDBOX_TICK_SECONDS") or 2),
        },
        "expire-holds": {
            "task": "ledger.tasks.holds_expire_due",
            # Read from the environment, not settings: this module loads before Django's settings.
            "schedule": float(os.environ.get("ZENTRA_HOLD_EXPIRY_INTERVAL_SECONDS") or 30),
        },
        "verify-ledger-nightly": {
            "task": "ledger.tasks.ledger_verify_all",
            "schedule": crontab(hour=2, minute=30),
        },
        "sign-ledger-checkpoints": {
            "task": "ledger.tasks.ledger_checkpoints_daily",
            "schedule": crontab(hour=0, minute=5),
        },
        "build-pending-evidence-exports": {
            "task": "backoffice.tasks.evidence_exports_build_pending",
            "schedule": 60.0,
        },
        "expire-approvals": {
            "task": "audit.tasks.approvals_expire",
            "schedule": 300.0,
        },
        # Reports whose matching was never handed to a worker (the broker was down).
        "match-waiting-settlement-reports": {
            "task": "payments.tasks.settlement_reports_match_waiting",
            "schedule": 60.0,
        },
        # Every provider's settlement report of yesterday (UTC), fetched and matched.
        "fetch-settlement-reports": {
            "task": "payments.tasks.settlement_reports_fetch_daily",
            "schedule": crontab(hour=0, minute=30),
        },
        "purge-expired-idempotency-keys": {
            "task": "zentra.tasks.idempotency_keys_purge",
            "schedule": crontab(minute=17),
        },
    },
)
app.autodiscover_tasks(["zentra", "tenants", "webhooks", "ledger", "payments", "audit", "backoffice"])


@setup_logging.connect
def use_django_logging(loglevel=None, **kwargs):
    """Worker and beat log through Django's LOGGING (JSON lines naming their request, or text
    while debugging) at the level asked with --loglevel, instead of Celery's own format."""
    import logging
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)
