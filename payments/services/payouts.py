"""Payouts: merchant funds leave for the tenant's payout account (pending), then the provider
pays them out (paid) or gives them back (failed: the posting is returned to the merchant)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from ledger.locks import lock_account_with_system, lock_tenant_accounts, locked_row, shard_pick
from ledger.models import CREDIT, DEBIT, Account
from ledger.services.holds import holds_release_lapsed
from ledger.services.postings import EntryInput, post_entries, with_lapsed_holds_retry
from ledger.services.system_accounts import system_accounts_refuse
from tenants.models import Tenant
from webhooks.services.outbox import event_emit
from zentra.db.before_commit import before_commit
from zentra.errors import InvalidStateTransition

from ..models import Payout, Provider, new_payout_id
from ..shapes import payout_body
from .settlement.records import settlement_record_payout


def _event(payout: Payout, type: str, actor: Actor) -> None:
    event_emit(tenant=payout.tenant, type=type, resource_id=payout.id, data_object=dict(payout_body(payout)),
               actor=actor)


def _payout_provider(tenant: Tenant) -> Provider | None:
    """The first provider by route priority that is not in an outage (failover for payouts)."""
    providers = Provider.objects.filter(tenant=tenant).order_by("routes__priority", "name")
    return providers.filter(outage=False).first() or providers.first()


def _payout_account(tenant: Tenant, currency: str) -> Account:
    return Account.objects.get(tenant=tenant, currency=currency, account_type="payout", is_system=True)


def payout_create(*, tenant: Tenant, account_id: str, amount: int, actor: Actor,
                  metadata: dict[str, Any] | None = None) -> Payout:
    return with_lapsed_holds_retry(_payout_create, tenant=tenant, account_id=account_id, amount=amount, actor=actor,
                                   metadata=metadata)


@transaction.atomic(durable=True)
def _payout_create(*, tenant: Tenant, account_id: str, amount: int, actor: Actor, metadata: dict[str, Any] | None,
                   lapsed_on: Sequence[str]) -> Payout:
    with acting_as(actor):
        # Named before the locks: the shard of the payout account it credits follows from it.
        payout_id = new_payout_id()
        if lapsed_on:
            # The rare retry: lapsed holds (and their accounts) are locked before any account.
            account = lock_tenant_accounts(tenant_id=tenant.id, wanted=[(account_id, "account")], actor=actor,
                                           action="pay out", lock=False)[account_id]
            payout_account = _payout_account(tenant, account.currency)
            locked = holds_release_lapsed(tenant=tenant, account_ids=lapsed_on, actor=actor,
                                          also_lock=[account.id, payout_account.id], whole=[account.id],
                                          pick=shard_pick(payout_id))
            account = locked_row(locked, account.id)
        else:
            account, found, locked = lock_account_with_system(
                tenant_id=tenant.id, account_id=account_id, system_type="payout", actor=actor, action="pay out",
                pick=shard_pick(payout_id))
            payout_account = found or _payout_account(tenant, account.currency)
        # Paying out of a reserve, settlement or payout account is moving its money by hand.
        system_accounts_refuse([account], actor=actor, action="pay out")
        payout = Payout(id=payout_id, tenant=tenant, account=account, amount=amount, currency=account.currency,
                        metadata=metadata or {}, source_request_id=current_request_id() or "",
                        provider=_payout_provider(tenant))
        payout._change_reason = "created"  # type: ignore[attr-defined]
        payout.save()
        post_entries(tenant=tenant, actor=actor, kind="payout", payout_id=payout.id, description=f"Payout {payout.id}",
                     entries=[EntryInput(account.id, DEBIT, amount),
                              EntryInput(payout_account.id, CREDIT, amount, row=True)],
                     locked=locked, lapsed_holds_released=bool(lapsed_on), shard_key=payout.id)
        _event(payout, "payout.created", actor)
        before_commit(payout)
        return payout


@transaction.atomic(durable=True)
def payout_resolve(*, payout_id: str, paid: bool, actor: Actor, reason: str = "",
                   provider_reference: str = "") -> Payout:
    """The provider paid the payout (naming its own reference for it, which its settlement report
    will carry) or gave it back."""
    with acting_as(actor):
        payout = Payout.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=payout_id)
        if payout.status != Payout.PENDING:
            raise InvalidStateTransition(f"Payout {payout.id} is {payout.status}")
        if not paid:
            payout_account = _payout_account(payout.tenant, payout.currency)
            post_entries(tenant=payout.tenant, actor=actor, kind="payout", payout_id=payout.id,
                         description=f"Return of failed payout {payout.id}", shard_key=payout.id,
                         entries=[EntryInput(payout_account.id, DEBIT, payout.amount),
                                  EntryInput(payout.account_id, CREDIT, payout.amount)])
            payout.failure_reason = reason[:500] or "the provider could not pay out"
        payout.status = Payout.PAID if paid else Payout.FAILED
        payout.resolved_at = timezone.now()
        if paid:
            payout.provider_reference = provider_reference[:100] or f"{payout.id}@{payout.provider_id}"
        payout._change_reason = reason or payout.status  # type: ignore[attr-defined]
        payout.save(update_fields=["status", "resolved_at", "failure_reason", "provider_reference"])
        if paid and payout.provider_id:
            settlement_record_payout(payout=payout, settled_at=payout.resolved_at)
        _event(payout, "payout.paid" if paid else "payout.failed", actor)
        return payout
