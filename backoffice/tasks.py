"""Thin Celery wrappers around backoffice/services/exports.py."""

import logging

from celery import shared_task

from audit.actors import Actor
from zentra.db.scope import each_tenant, tenant_scope
from zentra.db.tenancy import owner_tenant

from .services.exports import BUILD_TASK, evidence_export_build, evidence_exports_build_pending

logger = logging.getLogger("zentra.backoffice")
BUILDER = Actor.system("evidence_export_builder")


@shared_task(name=BUILD_TASK)
def build_evidence_export(export_id: str) -> str:
    """Build one export within its tenant's scope (the worker runs as the application role)."""
    tenant_id = owner_tenant("backoffice_evidenceexport", export_id)
    if tenant_id is None:
        return "missing"
    with tenant_scope([tenant_id]):
        export = evidence_export_build(export_id=export_id, actor=BUILDER)
    return export.status if export is not None else "skipped"


@shared_task(name="backoffice.tasks.evidence_exports_build_pending")
def build_pending_evidence_exports() -> int:
    """The sweep: exports whose nudge never reached a worker (broker down, worker lost)."""
    built = each_tenant(lambda: evidence_exports_build_pending(actor=BUILDER))
    if built:
        logger.info("evidence exports: %d built by the sweep", built, extra={"exports": built})
    return built
