from celery import shared_task

from zentra.api.idempotency import idempotency_keys_purge as purge
from zentra.db.scope import each_tenant


@shared_task(name="zentra.tasks.idempotency_keys_purge")
def idempotency_keys_purge() -> int:
    return each_tenant(purge)
