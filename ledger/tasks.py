"""Thin Celery wrappers: fetch by id, call a service."""

import logging

from celery import shared_task

from audit.actors import Actor
from tenants.models import Tenant
from zentra.db.scope import each_tenant, tenant_scope

from .services.checkpoints import checkpoint_take
from .services.holds import holds_expire_due as expire_due_holds
from .services.reconciliation import ledger_verify

logger = logging.getLogger("zentra.ledger")


@shared_task(name="ledger.tasks.ledger_verify_all")
def ledger_verify_all() -> dict[str, str]:
    """The nightly reconciliation: one stored run per tenant."""
    results = {}
    for tenant in Tenant.objects.order_by("slug"):
        with tenant_scope([tenant.id]):
            run = ledger_verify(tenant=tenant, actor=Actor.system("nightly_reconciliation"), trigger="beat")
        results[tenant.id] = run.status
        logger.log(logging.WARNING if run.breaks_count else logging.INFO, "ledger verification of %s: %s, %d breaks",
                   tenant.slug, run.status, run.breaks_count, extra={"tenant": tenant.slug, "run": run.id})
    return results


@shared_task(name="ledger.tasks.holds_expire_due")
def holds_expire_due() -> int:
    expired = each_tenant(lambda: expire_due_holds(actor=Actor.system("hold_expiry_job")))
    if expired:  # periodic jobs log when they did something, not on every tick
        logger.info("hold expiry: %d holds released", expired, extra={"holds": expired})
    return expired


@shared_task(name="ledger.tasks.ledger_checkpoints_daily")
def ledger_checkpoints_daily() -> int:
    """Sign every tenant's account heads once a day (docs/security.md)."""
    actor = Actor.system("daily_checkpoint")
    tenants = list(Tenant.objects.order_by("slug"))
    for tenant in tenants:
        with tenant_scope([tenant.id]):
            checkpoint_take(tenant=tenant, reason="daily", actor=actor)
    logger.info("daily checkpoints: %d tenants signed", len(tenants), extra={"tenants": len(tenants)})
    return len(tenants)
