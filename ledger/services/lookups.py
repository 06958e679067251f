"""Lookups the services share: an object of the caller's tenant, or 404 with evidence."""

from __future__ import annotations

from audit.actors import Actor
from audit.context import current_request_id
from audit.services import access_denial_record
from zentra.errors import NotFound

from ..models import Account


def tenant_account(tenant, account_id: str, actor: Actor, *, field: str) -> Account:
    """The tenant's account, or NotFound. Another tenant's account answers the same, and the
    attempt leaves an AccessDenial."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None or account.tenant_id != tenant.id:
        if account is not None:
            access_denial_record(actor=actor, tenant_id=tenant.id, action=f"use account as {field}", target=account_id,
                                 target_tenant_id=account.tenant_id, reason="account belongs to another tenant",
                                 request_id=current_request_id())
        raise NotFound(f"No such account: {account_id}", errors=[{"field": field, "message": "No such account."}])
    return account
