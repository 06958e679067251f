"""Thin Celery wrappers around the payments services."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from audit.actors import Actor
from tenants.models import Tenant
from zentra.db.scope import each_tenant, tenant_scope
from zentra.db.tenancy import owner_tenant

from .models import SettlementReport
from .services.sandbox import sandbox_payouts_due, sandbox_settle_due
from .services.settlement.fetch import settlement_reports_fetch
from .services.settlement.reports import settlement_report_fail, settlement_report_match

logger = logging.getLogger("zentra.payments")

SETTLEMENT_MATCH_TASK = "payments.tasks.settlement_report_match"
# A report still matching this long after it arrived was not handed to a worker (broker down).
MATCH_SWEEP_AFTER = timedelta(minutes=1)


@shared_task(name="payments.tasks.sandbox_providers_tick")
def sandbox_providers_tick() -> dict[str, int]:
    """The built-in sandbox providers' side of the world: settle accepted payments and pay out
    pending payouts once their configured delay has passed."""
    done = {"settled": each_tenant(sandbox_settle_due), "payouts": each_tenant(sandbox_payouts_due)}
    if any(done.values()):  # periodic jobs log when they did something, not on every tick
        logger.info("sandbox providers: %(settled)d payments settled, %(payouts)d payouts resolved", done,
                    extra=done)
    return done


def _match(tenant: Tenant, report_id: str, actor: Actor) -> str:
    try:
        report = settlement_report_match(tenant=tenant, report_id=report_id, actor=actor)
    except Exception as exc:
        logger.exception("settlement report %s could not be matched", report_id)
        settlement_report_fail(tenant=tenant, report_id=report_id, actor=actor, reason=f"{type(exc).__name__}: {exc}")
        raise
    logger.info("settlement report %s: %d lines, %d matched, %d breaks", report.id, report.lines, report.matched,
                report.breaks, extra={"report": report.id, "breaks": report.breaks})
    return report.status


@shared_task(name=SETTLEMENT_MATCH_TASK)
def settlement_report_match_task(tenant_id: str, report_id: str) -> str:
    if owner_tenant("payments_settlementreport", report_id) != tenant_id:
        return "unknown"
    with tenant_scope([tenant_id]):
        return _match(Tenant.objects.get(pk=tenant_id), report_id, Actor.system("settlement_matching"))


@shared_task(name="payments.tasks.settlement_reports_match_waiting")
def settlement_reports_match_waiting() -> int:
    actor = Actor.system("settlement_matching")

    def sweep() -> int:
        waiting = SettlementReport.objects.filter(status=SettlementReport.MATCHING,
                                                  created_at__lt=timezone.now() - MATCH_SWEEP_AFTER)
        done = 0
        for report in waiting.select_related("tenant").order_by("id")[:20]:
            _match(report.tenant, report.id, actor)
            done += 1
        return done

    return each_tenant(sweep)


@shared_task(name="payments.tasks.settlement_reports_fetch_daily")
def settlement_reports_fetch_daily() -> int:
    """Yesterday's (UTC) report of every provider, fetched and matched."""
    day = timezone.now().date() - timedelta(days=1)
    actor = Actor.system("settlement_fetch")
    fetched = 0
    for tenant in Tenant.objects.order_by("slug"):
        with tenant_scope([tenant.id]):
            for report in settlement_reports_fetch(tenant=tenant, day=day, actor=actor):
                fetched += 1
                logger.info("fetched %s report of %s for %s: %d lines, %d breaks", report.provider_id, tenant.slug,
                            day, report.lines, report.breaks, extra={"report": report.id})
    return fetched
