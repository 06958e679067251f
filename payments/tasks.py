"""Thin Celery wrappers around the payments services."""

from celery import shared_task

from .services.sandbox import sandbox_payouts_due, sandbox_settle_due


@shared_task(name="payments.tasks.sandbox_providers_tick")
def sandbox_providers_tick() -> dict[str, int]:
    """The built-in sandbox providers' side of the world: settle accepted payments and pay out
    pending payouts once their configured delay has passed."""
    return {"settled": sandbox_settle_due(), "payouts": sandbox_payouts_due()}
