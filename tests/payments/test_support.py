"""Helpers shared by the payment tests (test_payments_*.py). This module holds no tests.

A "desk" is tenant A ready to take payments through the API: a funding account (external,
debit-normal, unlimited overdraft), a funded customer and a merchant, and both sandbox
providers settling at once (settle_delay_seconds = 0), so the sandbox jobs run on demand.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from rest_framework.test import APIClient

from audit.models import AccessDenial
from ledger.models import Account, Hold, LedgerTransaction
from ledger.selectors import posted_balance
from payments.adapters import sign_event
from payments.models import (
    IntentTransition,
    PaymentIntent,
    Payout,
    Provider,
    ProviderAttempt,
    ProviderEvent,
    ProviderRoute,
)
from tests.ledger.checks import ledger_snapshot

FUNDS = 200_000


def balance(account_id: str) -> int:
    return posted_balance(Account.objects.get(pk=account_id))  # summed over a hot account's shards


def system_account(tenant, kind: str, currency: str = "USD") -> str:
    return Account.objects.get(tenant=tenant, currency=currency, account_type=kind, is_system=True).id


def provider(tenant, name: str) -> Provider:
    return Provider.objects.get(tenant=tenant, name=name)


def route(tenant, name: str, rail: str = "card") -> ProviderRoute:
    return ProviderRoute.objects.get(tenant=tenant, provider__name=name, rail=rail)


def set_provider(tenant, name: str, **fields) -> None:
    """What an operator does from the admin (mode, outage, delay): the sandbox obeys it."""
    Provider.objects.filter(tenant=tenant, name=name).update(**fields)


def new_account(ctx, **fields) -> str:
    body = {"currency": "USD", "account_type": "customer", "customer": "cus_1", **fields}
    response = ctx.post("/v1/accounts", body)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def fund(ctx, funding: str, account: str, amount: int) -> None:
    response = ctx.post("/v1/transactions", {"entries": [
        {"account": funding, "direction": "debit", "amount": amount},
        {"account": account, "direction": "credit", "amount": amount}]})
    assert response.status_code == 201, response.content


@dataclass
class Desk:
    ctx: object
    funding: str
    customer: str
    merchant: str
    reserve: str
    settlement: str
    payout: str

    @property
    def tenant(self):
        return self.ctx.tenant

    def balances(self) -> dict[str, int]:
        return {name: balance(getattr(self, name))
                for name in ("customer", "reserve", "settlement", "merchant", "payout")}


def open_desk(ctx, *, funds: int = FUNDS, customer: str = "cus_1") -> Desk:
    funding = new_account(ctx, account_type="external", normal_balance="debit", allow_overdraft=True,
                          customer="")
    customer_id = new_account(ctx, customer=customer)
    merchant = new_account(ctx, account_type="merchant", customer="mer_1")
    if funds:
        fund(ctx, funding, customer_id, funds)
    Provider.objects.filter(tenant=ctx.tenant).update(settle_delay_seconds=0)
    return Desk(ctx=ctx, funding=funding, customer=customer_id, merchant=merchant,
                reserve=system_account(ctx.tenant, "reserve"), settlement=system_account(ctx.tenant, "settlement"),
                payout=system_account(ctx.tenant, "payout"))


def create_intent(desk: Desk, amount: int = 125_000, *, source: str | None = None, **extra) -> dict:
    response = desk.ctx.post("/v1/payment_intents", {
        "amount": amount, "currency": "USD", "source_account": source or desk.customer,
        "destination_account": desk.merchant, **extra})
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "requires_confirmation"
    return response.json()


def confirm(desk: Desk, intent_id: str):
    return desk.ctx.post(f"/v1/payment_intents/{intent_id}/confirm")


def confirmed(desk: Desk, amount: int = 125_000, *, expect: str = "processing", **extra) -> dict:
    intent = create_intent(desk, amount, **extra)
    response = confirm(desk, intent["id"])
    assert response.status_code == 200, response.content
    assert response.json()["status"] == expect, response.json()
    return response.json()


# --- inbound provider events ------------------------------------------------------------------


def event_body(intent_id: str, *, type: str = "payment.settled", event_id: str | None = None,
               reference: str | None = None) -> bytes:
    """The body a provider sends; the reference defaults to the one the intent holds."""
    intent = PaymentIntent.objects.get(pk=intent_id)
    return json.dumps({"id": event_id or f"pevt_{uuid.uuid4().hex}", "type": type, "intent": intent_id,
                       "reference": intent.provider_reference if reference is None else reference,
                       "amount": intent.amount, "currency": intent.currency}, separators=(",", ":")).encode()


def deliver(provider_id: str, body: bytes, header: str | None, *, client: APIClient | None = None):
    client = client or APIClient()
    client.raise_request_exception = False  # a 500 is a finding, not a crash of the test
    extra = {} if header is None else {"HTTP_ZENTRA_PROVIDER_SIGNATURE": header}
    return client.post(f"/v1/providers/{provider_id}/events", data=body, content_type="application/json", **extra)


def deliver_signed(prov: Provider, body: bytes, *, timestamp: int | None = None):
    return deliver(prov.id, body, sign_event(prov.secret, body, timestamp))


def now() -> int:
    return int(time.time())


# --- what a refused request must leave unchanged ----------------------------------------------------


def intent_state(intent_id: str) -> dict:
    intent = PaymentIntent.objects.get(pk=intent_id)
    hold = Hold.objects.filter(pk=intent.hold_id).values_list(
        "status", "captured_amount", "released_amount").first()
    return {
        "status": intent.status, "hold": intent.hold_id, "hold_state": hold, "route": intent.route_id,
        "reference": intent.provider_reference, "failure_reason": intent.failure_reason,
        "transitions": list(IntentTransition.objects.filter(intent=intent).values_list("from_status", "to_status")),
        "attempts": ProviderAttempt.objects.filter(intent=intent).count(),
        "provider_events": ProviderEvent.objects.filter(intent=intent).count(),
        "history": intent.history.count(),
        "postings": LedgerTransaction.objects.filter(payment_intent_id=intent.id).count(),
    }


def world(tenant) -> dict:
    """Everything of the tenant's money side that a refused request must leave as it was."""
    return {
        "ledger": ledger_snapshot([tenant.id]),
        "intents": sorted(PaymentIntent.objects.filter(tenant=tenant).values_list("id", "status", "hold_id")),
        "holds": sorted(Hold.objects.filter(tenant=tenant).values_list("id", "status")),
        "transitions": IntentTransition.objects.filter(intent__tenant=tenant).count(),
        "attempts": ProviderAttempt.objects.filter(intent__tenant=tenant).count(),
        "provider_events": ProviderEvent.objects.filter(provider__tenant=tenant).count(),
        "payouts": sorted(Payout.objects.filter(tenant=tenant).values_list("id", "status")),
    }


def denials(**filters) -> list[AccessDenial]:
    return list(AccessDenial.objects.filter(**filters))


def problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:800])
    body = response.json()
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    if code is not None:
        assert body["code"] == code, body
    return body
