"""Thin Celery wrappers around webhooks/services/delivery.py."""

import logging

from celery import shared_task

from zentra.db.scope import each_tenant, tenant_scope
from zentra.db.tenancy import owner_tenant

from .services.delivery import delivery_attempt, relay_once
from .services.outbox import RELAY_TASK

# Periodic jobs log when they did something, not on every tick.
logger = logging.getLogger("zentra.webhooks")


@shared_task(name=RELAY_TASK)
def relay() -> int:
    """Claim what is due and hand each delivery to a worker of its own, so one slow receiver
    holds one worker slot, not the whole queue."""
    def hand_over(delivery_id: str, owner: str) -> None:
        deliver.apply_async((delivery_id, owner))

    claimed = each_tenant(lambda: relay_once(send=hand_over))
    if claimed:
        logger.info("relay: %d deliveries handed to workers", claimed, extra={"deliveries": claimed})
    return claimed


@shared_task(name="webhooks.tasks.deliver")
def deliver(delivery_id: str, owner: str) -> bool:
    tenant_id = owner_tenant("webhooks_delivery", delivery_id)
    if tenant_id is None:
        return False
    with tenant_scope([tenant_id]):
        return delivery_attempt(delivery_id=delivery_id, owner=owner) is not None
