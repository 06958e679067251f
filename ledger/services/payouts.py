"""Payouts: merchant funds leave for the tenant's payout account (pending), then the provider
pays them out (paid) or gives them back (failed: the posting is returned to the merchant)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from audit.context import current_request_id
from webhooks.services import event_emit
from zentra.errors import InvalidStateTransition, ValidationFailed

from ..models import Account, Payout, Provider
from .lookups import tenant_account
from .postings import CREDIT, DEBIT, EntryInput, post_entries, release_lapsed_holds_first, with_lapsed_holds_retry


def _event(payout: Payout, type: str, actor: Actor) -> None:
    from ..representations import payout_payload

    event_emit(tenant=payout.tenant, type=type, resource_id=payout.id, data_object=payout_payload(payout), actor=actor)


def _payout_provider(tenant) -> Provider | None:
    """The first provider by route priority that is not in an outage (failover for payouts)."""
    providers = Provider.objects.filter(tenant=tenant).order_by("routes__priority", "name")
    return providers.filter(outage=False).first() or providers.first()


def payout_create(*, tenant, account_id: str, amount: int, actor: Actor, metadata: dict | None = None) -> Payout:
    return with_lapsed_holds_retry(_payout_create, tenant=tenant, account_id=account_id, amount=amount, actor=actor,
                                   metadata=metadata)


@transaction.atomic(durable=True)
def _payout_create(*, tenant, account_id, amount, actor, metadata, lapsed_on) -> Payout:
    with acting_as(actor):
        account = tenant_account(tenant, account_id, actor, field="account")
        if account.is_system:
            raise ValidationFailed(f"Account {account.id} is a system account",
                                   errors=[{"field": "account", "message": "Not a system account."}])
        payout_account = Account.objects.get(tenant=tenant, currency=account.currency, account_type="payout",
                                             is_system=True)
        release_lapsed_holds_first(lapsed_on, lock_too=[account.id, payout_account.id], actor=actor)
        payout = Payout.objects.create(tenant=tenant, account=account, amount=amount, currency=account.currency,
                                       metadata=metadata or {}, source_request_id=current_request_id() or "",
                                       provider=_payout_provider(tenant))
        post_entries(tenant=tenant, actor=actor, kind="payout", payout=payout, description=f"Payout {payout.id}",
                     entries=[EntryInput(account.id, DEBIT, amount), EntryInput(payout_account.id, CREDIT, amount)],
                     lapsed_holds_released=bool(lapsed_on))
        _event(payout, "payout.created", actor)
        return payout


@transaction.atomic(durable=True)
def payout_resolve(*, payout_id: str, paid: bool, actor: Actor, reason: str = "") -> Payout:
    with acting_as(actor):
        payout = Payout.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=payout_id)
        if payout.status != Payout.PENDING:
            raise InvalidStateTransition(f"Payout {payout.id} is {payout.status}")
        if not paid:
            payout_account = Account.objects.get(tenant=payout.tenant, currency=payout.currency,
                                                 account_type="payout", is_system=True)
            post_entries(tenant=payout.tenant, actor=actor, kind="payout", payout=payout,
                         description=f"Return of failed payout {payout.id}",
                         entries=[EntryInput(payout_account.id, DEBIT, payout.amount),
                                  EntryInput(payout.account_id, CREDIT, payout.amount)])
            payout.failure_reason = reason[:500] or "the provider could not pay out"
        payout.status = Payout.PAID if paid else Payout.FAILED
        payout.resolved_at = timezone.now()
        payout._change_reason = reason or payout.status
        payout.save(update_fields=["status", "resolved_at", "failure_reason"])
        _event(payout, "payout.paid" if paid else "payout.failed", actor)
        return payout


def sandbox_payouts_due(*, limit: int = 200) -> int:
    """Sandbox providers pay out after their delay: approve pays, decline or outage fails."""
    done = 0
    now = timezone.now()
    actor = Actor.system("sandbox_provider")
    for payout in Payout.objects.filter(status=Payout.PENDING, provider__kind="sandbox").select_related(
            "provider").order_by("id")[:limit]:
        if payout.created_at > now - timedelta(seconds=payout.provider.settle_delay_seconds):
            continue
        provider = payout.provider
        paid = provider.mode == Provider.APPROVE and not provider.outage
        try:
            payout_resolve(payout_id=payout.id, paid=paid, actor=actor,
                           reason="" if paid else f"{provider.name} refused the payout")
            done += 1
        except InvalidStateTransition:
            continue
    return done
