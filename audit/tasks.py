"""Thin Celery wrappers around the audit services."""

import logging

from celery import shared_task

from zentra.db.scope import each_tenant

from .actors import Actor
from .services.approvals import approvals_expire

logger = logging.getLogger("zentra.audit")


@shared_task(name="audit.tasks.approvals_expire")
def approvals_expire_due() -> int:
    expired = each_tenant(lambda: approvals_expire(actor=Actor.system("approval_expiry")))
    if expired:
        logger.info("approvals: %d expired before a decision", expired, extra={"approvals": expired})
    return expired
