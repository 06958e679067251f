from celery import shared_task

from zentra.api.idempotency import idempotency_keys_purge as purge


@shared_task(name="zentra.tasks.idempotency_keys_purge")
def idempotency_keys_purge() -> int:
    return purge()
