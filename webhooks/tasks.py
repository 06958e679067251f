"""Thin Celery wrappers around webhooks/services/delivery.py."""

from celery import shared_task

from .services.delivery import delivery_attempt, relay_once
from .services.outbox import RELAY_TASK


@shared_task(name=RELAY_TASK)
def relay() -> int:
    """Claim what is due and hand each delivery to a worker of its own, so one slow receiver
    holds one worker slot, not the whole queue."""
    return relay_once(send=lambda delivery_id, owner: deliver.apply_async((delivery_id, owner)))


@shared_task(name="webhooks.tasks.deliver")
def deliver(delivery_id: str, owner: str) -> bool:
    return delivery_attempt(delivery_id=delivery_id, owner=owner) is not None
