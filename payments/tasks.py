"""Thin Celery wrappers around the payments services."""

import logging

from celery import shared_task

from zentra.db.scope import each_tenant

from .services.sandbox import sandbox_payouts_due, sandbox_settle_due

logger = logging.getLogger("zentra.payments")


@shared_task(name="payments.tasks.sandbox_providers_tick")
def sandbox_providers_tick() -> dict[str, int]:
    """The built-in sandbox providers' side of the world: settle accepted payments and pay out
    pending payouts once their configured delay has passed."""
    done = {"settled": each_tenant(sandbox_settle_due), "payouts": each_tenant(sandbox_payouts_due)}
    if any(done.values()):  # periodic jobs log when they did something, not on every tick
        logger.info("sandbox providers: %(settled)d payments settled, %(payouts)d payouts resolved", done,
                    extra=done)
    return done
