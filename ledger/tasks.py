"""Thin Celery wrappers: fetch by id, call a service."""

from celery import shared_task

from audit.actors import Actor
from tenants.models import Tenant

from .services.holds import holds_expire_due as expire_due_holds
from .services.reconciliation import ledger_verify


@shared_task(name="ledger.tasks.ledger_verify_all")
def ledger_verify_all() -> dict[str, str]:
    """The nightly reconciliation: one stored run per tenant."""
    results = {}
    for tenant in Tenant.objects.order_by("slug"):
        run = ledger_verify(tenant=tenant, actor=Actor.system("nightly_reconciliation"), trigger="beat")
        results[tenant.id] = run.status
    return results


@shared_task(name="ledger.tasks.holds_expire_due")
def holds_expire_due() -> int:
    return expire_due_holds(actor=Actor.system("hold_expiry_job"))
