"""What a built-in sandbox provider reports it settled on one day, with its fees: its side of
reconciliation, built from its own books (the settlement events it sent, the payouts it paid),
never from the ledger's records it will be matched against.

Fee schedule (documented in docs/reconciliation.md): charges 2.9% of gross, rounded half up,
plus 30 minor units; payouts, refunds and disputes no fee.

A provider's `report_faults` make the report misbehave on purpose, one line per fault, so that
the demo and the tests produce every kind of break: `drop` leaves the first charge out,
`change_amount` adds 100 to the second charge's gross, `change_currency` reports the third
charge in another currency, `duplicate` repeats the first remaining line under a new line id,
`unknown_reference` adds a charge the ledger never saw.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta

from ...models import Payout, Provider, ProviderEvent
from .parse import COLUMNS

FAULTS = ("drop", "change_amount", "change_currency", "duplicate", "unknown_reference")


def charge_fee(gross: int) -> int:
    return (gross * 29 + 500) // 1000 + 30


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _booked(provider: Provider, start: datetime, end: datetime) -> list[dict]:
    rows = []
    for event in ProviderEvent.objects.filter(provider=provider, type="payment.settled", received_at__gte=start,
                                              received_at__lt=end).exclude(outcome="").order_by("received_at", "id"):
        gross = int(event.payload["amount"])
        rows.append({"type": "charge", "provider_reference": event.payload["reference"],
                     "currency": event.payload["currency"], "gross": gross, "fee": charge_fee(gross),
                     "booked_at": event.received_at})
    for payout in Payout.objects.filter(provider=provider, status=Payout.PAID, resolved_at__gte=start,
                                        resolved_at__lt=end).order_by("resolved_at", "id"):
        rows.append({"type": "payout", "provider_reference": payout.provider_reference, "currency": payout.currency,
                     "gross": -payout.amount, "fee": 0, "booked_at": payout.resolved_at})
    return rows


def _faulty(rows: list[dict], faults: list[str], day: date) -> list[dict]:
    charges = [row for row in rows if row["type"] == "charge"]
    if "drop" in faults and charges:
        rows.remove(charges.pop(0))
    if "change_amount" in faults and len(charges) > 0:
        row = charges.pop(0)
        row["gross"] += 100
        row["fee"] = charge_fee(row["gross"])
    if "change_currency" in faults and len(charges) > 0:
        row = charges.pop(0)
        row["currency"] = "EUR" if row["currency"] != "EUR" else "GBP"
    if "duplicate" in faults and rows:
        rows.append(dict(rows[0]))
    if "unknown_reference" in faults:
        rows.append({"type": "charge", "provider_reference": f"sbx_unknown_{day:%Y%m%d}", "currency": "USD",
                     "gross": 4200, "fee": charge_fee(4200), "booked_at": day_bounds(day)[1] - timedelta(seconds=1)})
    return rows


def sandbox_settlement_report(provider: Provider, day: date) -> bytes:
    """The sandbox's CSV for `day` (UTC): one line per movement it booked, in the contract's columns."""
    start, end = day_bounds(day)
    rows = _faulty(_booked(provider, start, end), [f for f in provider.report_faults if f in FAULTS], day)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for number, row in enumerate(rows, 1):
        writer.writerow([f"{provider.name}-{day:%Y%m%d}-{number:06d}", row["type"], row["provider_reference"],
                         row["currency"], row["gross"], row["fee"], row["gross"] - row["fee"],
                         row["booked_at"].astimezone(UTC).isoformat().replace("+00:00", "Z")])
    return out.getvalue().encode()
