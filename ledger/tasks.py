"""Thin Celery wrappers: fetch by id, call a service."""

from celery import shared_task

from audit.actors import Actor
from tenants.models import Tenant

from .services.reconciliation import ledger_verify


@shared_task(name="ledger.tasks.ledger_verify_all")
def ledger_verify_all() -> dict:
    """The nightly reconciliation: one stored run per tenant."""
    results = {}
    for tenant_id in Tenant.objects.order_by("slug").values_list("id", flat=True):
        run = ledger_verify(tenant=Tenant.objects.get(pk=tenant_id), actor=Actor.system("nightly_reconciliation"),
                            trigger="beat")
        results[tenant_id] = run.status
    return results


@shared_task(name="ledger.tasks.holds_expire_due")
def holds_expire_due() -> int:
    from .services.holds import holds_expire_due as expire

    return expire(actor=Actor.system("hold_expiry_job"))


@shared_task(name="ledger.tasks.sandbox_providers_tick")
def sandbox_providers_tick() -> dict:
    """The built-in sandbox providers' side of the world: settle accepted payments and pay out
    pending payouts once their configured delay has passed."""
    from .services.intents import sandbox_settle_due
    from .services.payouts import sandbox_payouts_due

    return {"settled": sandbox_settle_due(), "payouts": sandbox_payouts_due()}
