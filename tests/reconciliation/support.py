"""Helpers of the reconciliation tests: a desk whose sandbox provider has settled charges and
paid a payout today, and its reports. This module holds no tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from ledger.models import Account
from payments.models import Provider, SettlementRecord
from payments.services.sandbox import sandbox_payouts_due, sandbox_settle_due
from tests.payments.test_support import confirmed, open_desk

CHARGES = (10_000, 20_000, 30_000, 40_000)


def settled_desk(ctx, charges=CHARGES, *, payout: int = 5_000):
    """Charges confirmed and settled by sandbox-a, and a payout it paid: the day's movements."""
    desk = open_desk(ctx)
    Provider.objects.filter(tenant=ctx.tenant).exclude(name="sandbox-a").update(outage=True)
    for amount in charges:
        confirmed(desk, amount)
    assert sandbox_settle_due() == len(charges)
    if payout:
        response = ctx.post("/v1/payouts", {"account": desk.merchant, "amount": payout})
        assert response.status_code == 201, response.content
        assert sandbox_payouts_due() == 1
    return desk


def today() -> tuple[str, datetime, datetime]:
    start = datetime.combine(timezone.now().date(), datetime.min.time(), tzinfo=UTC)
    return start.date().isoformat(), start, start + timedelta(days=1)


def sandbox_csv(ctx, name: str = "sandbox-a", day: str | None = None) -> bytes:
    provider = Provider.objects.get(tenant=ctx.tenant, name=name)
    response = ctx.client.get(f"/v1/providers/{provider.id}/settlement_report", {"date": day or today()[0]})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return response.content


def upload(ctx, content: bytes, *, name: str = "sandbox-a", start: datetime | None = None,
           end: datetime | None = None, key: str | None = None):
    provider = Provider.objects.get(tenant=ctx.tenant, name=name)
    _, day_start, day_end = today()
    query = (f"provider={provider.id}&period_start={(start or day_start).isoformat().replace('+00:00', 'Z')}"
             f"&period_end={(end or day_end).isoformat().replace('+00:00', 'Z')}")
    return ctx.client.post(f"/v1/settlement_reports?{query}", data=content, content_type="text/csv",
                           HTTP_IDEMPOTENCY_KEY=key or f"upload-{timezone.now().timestamp()}-{len(content)}")


def fee_accounts(tenant) -> tuple[Account, Account]:
    accounts = {a.account_type: a for a in Account.objects.filter(tenant=tenant, is_system=True, currency="USD")}
    return accounts["settlement"], accounts["fees"]


def records(tenant):
    return SettlementRecord.objects.filter(tenant=tenant).order_by("settled_at")
