"""Thin Celery wrappers around webhooks/services/delivery.py."""

import logging

from celery import shared_task
from django.conf import settings

from zentra.db.scope import each_tenant, tenant_scope
from zentra.db.tenancy import owner_tenant

from .services.delivery import deliveries_send, delivery_attempt, relay_once
from .services.outbox import RELAY_TASK

# Periodic jobs log when they did something, not on every tick.
logger = logging.getLogger("zentra.webhooks")


@shared_task(name=RELAY_TASK)
def relay() -> int:
    """Claim what is due and hand it to the workers in batches: a worker sends its batch side
    by side over kept-alive connections, so one slow receiver holds one request slot, not the
    whole queue."""
    def hand_over(delivery_ids: list[str], owner: str) -> None:
        deliver_batch.apply_async((delivery_ids, owner))

    claimed = each_tenant(lambda: relay_once(limit=settings.ZENTRA_WEBHOOK_CLAIM_LIMIT, send=hand_over))
    if claimed:
        logger.info("relay: %d deliveries handed to workers", claimed, extra={"deliveries": claimed})
    return claimed


@shared_task(name="webhooks.tasks.deliver_batch")
def deliver_batch(delivery_ids: list[str], owner: str) -> int:
    tenant_id = owner_tenant("webhooks_delivery", delivery_ids[0]) if delivery_ids else None
    if tenant_id is None:
        return 0
    with tenant_scope([tenant_id]):  # one relay claim is one tenant's (each_tenant)
        return deliveries_send(delivery_ids=delivery_ids, owner=owner)


# Kept for messages queued by an earlier version of the relay (one task per delivery).
@shared_task(name="webhooks.tasks.deliver")
def deliver(delivery_id: str, owner: str) -> bool:
    tenant_id = owner_tenant("webhooks_delivery", delivery_id)
    if tenant_id is None:
        return False
    with tenant_scope([tenant_id]):
        return delivery_attempt(delivery_id=delivery_id, owner=owner) is not None
