"""The one rule that guards system accounts (API.md, System accounts), shared by every path
that could touch them by hand: freeze and close, and manual transfers. The services that own
these accounts (holds, settlement, payouts) move their money without coming through here."""

from __future__ import annotations

from collections.abc import Iterable

from audit.actors import Actor
from audit.context import current_request_id
from audit.services.evidence import access_denial_record

from ..errors import SystemAccountProtected
from ..models import Account


def system_accounts_refuse(accounts: Iterable[Account], *, actor: Actor, action: str) -> None:
    """Refuse (403 system_account), with an AccessDenial naming `action`, if any of `accounts` is a
    system account."""
    for account in accounts:
        if account.is_system:
            detail = (f"Account {account.logical_id} is the tenant's {account.account_type} system account: only "
                      "the services that own it move its money; no key or operator may freeze, close or post to it")
            access_denial_record(actor=actor, action=action, target=account.logical_id, tenant_id=account.tenant_id,
                                 target_tenant_id=account.tenant_id, reason=detail,
                                 request_id=current_request_id() or "")
            raise SystemAccountProtected(detail)
