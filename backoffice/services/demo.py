"""The demo's operations scene: something real behind every dashboard tile.

Each item is made the way production would make it, through the same services: a receiver
that is down (its deliveries pending and retried), an endpoint disabled with its reason, a
card pre-authorisation that lapses tomorrow, a bank-transfer provider in an outage whose route's
circuit opened on a real failed payment, another tenant's operator refused on a demo account,
today's settlement report with breaks of several kinds (one resolved by an approved adjusting
posting, another proposal waiting for its second person), and one staged tamper on a dedicated
account, which the ledger verification run then finds (the rest of the demo ledger verifies
clean). Idempotent: a second run finds the scene set.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import override_settings
from django.utils import timezone

from audit.actors import Actor
from audit.services.approvals import approval_approve
from ledger.models import Account, Hold, LedgerEntry, ReconciliationBreak
from ledger.services.accounts import account_create
from ledger.services.breaks import break_adjustment_propose, break_assign, break_comment
from ledger.services.holds import hold_place
from ledger.services.postings import EntryInput
from ledger.services.reconciliation import ledger_verify
from ledger.services.transfers import ledger_transaction_post
from payments.models import PaymentIntent, Provider
from payments.services.configuration import provider_create, provider_update, route_create
from payments.services.intents import payment_intent_confirm, payment_intent_create
from payments.services.sandbox import sandbox_settle_due
from payments.services.settlement.fetch import settlement_reports_fetch
from tenants.models import Tenant
from tenants.selectors import Scope, object_not_found
from webhooks.models import WebhookEndpoint
from webhooks.services.endpoints import endpoint_create, endpoint_disable

TAMPERED = "Tamper demo USD"


def demo_receivers_ensure(*, tenant: Tenant, actor: Actor) -> None:
    """Before the demo's payments, so their events go out (and fail: the receiver is down)."""
    if not WebhookEndpoint.objects.filter(tenant=tenant, description__startswith="demo:").exists():
        _webhooks(tenant, actor)


def demo_scene_ensure(*, tenant: Tenant, other: Tenant, accounts: dict[str, Account], actor: Actor) -> None:
    if Account.objects.filter(tenant=tenant, name=TAMPERED).exists():
        return
    _expiring_hold(tenant, accounts, actor)
    _open_circuit(tenant, accounts, actor)
    _refusal(tenant, other, accounts)
    _reconciliation(tenant, accounts, actor)
    _tampered_account(tenant, accounts, actor)
    ledger_verify(tenant=tenant, actor=actor, trigger="demo")


def _webhooks(tenant: Tenant, actor: Actor) -> None:
    # The demo's receivers are local: allowed for these two, whatever the process's setting.
    with override_settings(ZENTRA_WEBHOOK_ALLOW_PRIVATE=True):
        endpoint_create(tenant=tenant, url="http://127.0.0.1:9/hooks", actor=actor, event_types_filter=["*"],
                        description="demo: the shop's receiver, down (nothing listens on port 9)")
        gone, _ = endpoint_create(tenant=tenant, url="http://127.0.0.1:9/old-hooks", actor=actor,
                                  event_types_filter=["payment_intent.*"],
                                  description="demo: a receiver the shop retired")
    endpoint_disable(tenant=tenant, endpoint_id=gone.id, actor=actor, reason="the receiver answered 410 Gone")


def _expiring_hold(tenant: Tenant, accounts: dict[str, Account], actor: Actor) -> Hold:
    return hold_place(tenant=tenant, account_id=accounts["Bob USD"].id, amount=5_00, expires_in=12 * 3600,
                      reference="demo: card pre-authorisation, lapses tomorrow", actor=actor)


def _open_circuit(tenant: Tenant, accounts: dict[str, Account], actor: Actor) -> PaymentIntent:
    """A bank-transfer provider goes down; the one payment routed to it fails, and its route's
    circuit opens for an hour."""
    provider = Provider.objects.filter(tenant=tenant, name="sandbox-bank").first() or provider_create(
        tenant=tenant, name="sandbox-bank", actor=actor, reason="demo: bank transfers", settle_delay_seconds=2)
    route_create(tenant=tenant, provider_id=provider.id, actor=actor, reason="demo: bank transfers",
                 rail="bank_transfer", priority=50, currencies=["USD"], failure_threshold=1, cooldown_seconds=3600)
    provider_update(tenant=tenant, provider_id=provider.id, actor=actor, reason="demo: the bank is down",
                    outage=True)
    intent = payment_intent_create(tenant=tenant, amount=30_00, currency="USD", rail="bank_transfer",
                                   source_account_id=accounts["Bob USD"].id,
                                   destination_account_id=accounts["Demo Shop USD"].id, actor=actor)
    intent = payment_intent_confirm(tenant=tenant, intent_id=intent.id, actor=actor)
    provider_update(tenant=tenant, provider_id=provider.id, actor=actor, reason="demo: the bank is back",
                    outage=False)
    return intent


def _reconciliation(tenant: Tenant, accounts: dict[str, Account], actor: Actor) -> None:
    """Today's settlement report of sandbox-a, fetched and matched: its charges settle, and the
    sandbox is told to misbehave (a line dropped, an amount changed, a line twice, a charge the
    ledger never saw), so the report opens a break of each of those kinds. An operator proposes
    an adjusting posting for the changed amount and the owner approves it; another proposal
    waits on the dashboard."""
    provider = Provider.objects.get(tenant=tenant, name="sandbox-a")
    provider_update(tenant=tenant, provider_id=provider.id, actor=actor, reason="demo: settle at once",
                    settle_delay_seconds=0)
    for amount in (12_50, 31_00, 8_75, 54_20):
        intent = payment_intent_create(tenant=tenant, amount=amount, currency="USD", actor=actor,
                                       source_account_id=accounts["Bob USD"].id,
                                       destination_account_id=accounts["Demo Shop USD"].id)
        payment_intent_confirm(tenant=tenant, intent_id=intent.id, actor=actor)
    sandbox_settle_due()
    provider_update(tenant=tenant, provider_id=provider.id, actor=actor, reason="demo: the sandbox misbehaves",
                    settle_delay_seconds=2, report_faults=["drop", "change_amount", "duplicate", "unknown_reference"])
    settlement_reports_fetch(tenant=tenant, day=timezone.now().date(), actor=actor)
    operator, owner = (Actor.for_user(get_user_model().objects.get(username=f"demo-{role}"))
                       for role in ("operator", "owner"))
    found = {b.kind: b for b in ReconciliationBreak.objects.filter(tenant=tenant).exclude(report_id="")}
    settlement = Account.objects.get(tenant=tenant, currency="USD", account_type="settlement", is_system=True)
    changed = found["amount_mismatch"]
    difference = (changed.actual or 0) - (changed.expected or 0)
    proposal = break_adjustment_propose(
        tenant=tenant, break_id=changed.pk, actor=operator,
        note="sandbox-a settled 1.00 more than the charge; held in settlement until it is returned",
        entries=[EntryInput(accounts["Funding USD"].id, "debit", difference), EntryInput(settlement.id, "credit",
                                                                                         difference)])
    approval_approve(tenant_id=tenant.id, approval_id=proposal.pk, actor=owner, reason="matches the report")
    unknown = found["missing_in_ledger"]
    break_assign(tenant=tenant, break_id=unknown.pk, actor=operator, assignee=operator)
    break_comment(tenant=tenant, break_id=unknown.pk, actor=operator,
                  text="sandbox-a's portal shows this charge settled; no intent of ours names its reference")
    break_adjustment_propose(
        tenant=tenant, break_id=unknown.pk, actor=operator,
        note="a charge the ledger never saw: book it as received from the provider, pending its claim",
        entries=[EntryInput(settlement.id, "debit", unknown.actual or 0),
                 EntryInput(accounts["Funding USD"].id, "credit", unknown.actual or 0)])


def _refusal(tenant: Tenant, other: Tenant, accounts: dict[str, Account]) -> None:
    """Another tenant's operator asks for a demo account: refused, and recorded."""
    outsider = get_user_model().objects.get(username="acme-operator")
    object_not_found(Account, accounts["Alice USD"].id, label="account", action="admin:view ledger.account",
                     scope=Scope(actor=Actor.for_user(outsider), tenant_ids=frozenset({other.id}), user=outsider))


def _tampered_account(tenant: Tenant, accounts: dict[str, Account], actor: Actor) -> None:
    """An entry edited behind the application's back (as only the schema owner or a superuser
    could: the application role cannot disable a trigger): the hash chain no longer verifies,
    which is what the verification run reports."""
    account = account_create(tenant=tenant, currency="USD", account_type="customer", customer="cus_tamper",
                             name=TAMPERED, actor=actor)
    ledger_transaction_post(tenant=tenant, actor=actor, description="Opening balance of the tamper demo",
                            entries=[EntryInput(accounts["Funding USD"].id, "debit", 1_00),
                                     EntryInput(account.id, "credit", 1_00)])
    entry = LedgerEntry.objects.get(account=account, sequence=1)
    with transaction.atomic(), connection.cursor() as cursor:
        # Past the append-only trigger: a superuser (the tests' login) skips every trigger; the
        # schema owner (make run's) disables this one and puts it back at once.
        cursor.execute("SHOW is_superuser")
        superuser = cursor.fetchone()[0] == "on"
        table = LedgerEntry._meta.db_table
        cursor.execute("SET LOCAL session_replication_role = replica" if superuser
                       else f"ALTER TABLE {table} DISABLE TRIGGER ledgerentry_append_only")
        cursor.execute(f"UPDATE {table} SET hash = md5(hash) || md5(hash) WHERE id = %s", [entry.id])
        cursor.execute("SET LOCAL session_replication_role = origin" if superuser
                       else f"ALTER TABLE {table} ENABLE TRIGGER ledgerentry_append_only")
