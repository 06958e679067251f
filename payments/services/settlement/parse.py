"""A provider's settlement report as the contract defines it, checked whole: the first fault
found names its line and column, and nothing of the report is kept.

    line_id,type,provider_reference,currency,gross,fee,net,booked_at

Amounts are integers in minor units: `gross` signed from the tenant's side (charges positive;
refunds, disputes and payouts negative), `fee` never negative, `net = gross - fee`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from django.utils.dateparse import parse_datetime

from ledger import currencies
from zentra.errors import ValidationFailed

from ...models import MOVEMENT_TYPES

COLUMNS = ("line_id", "type", "provider_reference", "currency", "gross", "fee", "net", "booked_at")
# The types whose lines name a movement the ledger records (a fee or an adjustment may name none).
REFERENCED_TYPES = ("charge", "refund", "dispute", "payout")
MAX_AMOUNT = 2**63 - 1
MAX_TEXT = 100


class ReportMalformed(ValidationFailed):
    def __init__(self, line: int, column: str, message: str):
        where = f"line {line}" + (f", column {column}" if column else "")
        super().__init__(f"Settlement report refused, nothing kept: {where}: {message}",
                         errors=[{"field": f"line {line}" + (f": {column}" if column else ""),
                                  "message": f"{where}: {message}"}])


@dataclass(frozen=True)
class ReportLine:
    line_no: int
    line_id: str
    type: str
    provider_reference: str
    currency: str
    gross: int
    fee: int
    net: int
    booked_at: datetime


def _integer(value: str, line: int, column: str) -> int:
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        raise ReportMalformed(line, column, f"{value!r} is not an integer number of minor units")
    number = int(text)
    if abs(number) > MAX_AMOUNT:
        raise ReportMalformed(line, column, f"{value} is out of range")
    return number


def report_lines(content: bytes, *, period_start: datetime, period_end: datetime) -> list[ReportLine]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ReportMalformed(line, "", "not UTF-8 text") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ReportMalformed(line, "", "contains a NUL character")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ReportMalformed(1, "", f"empty: the header {','.join(COLUMNS)} is required") from None
    except csv.Error as exc:
        raise ReportMalformed(1, "", f"not CSV ({exc})") from None
    names = [name.strip() for name in header]
    for column in COLUMNS:
        if column not in names:
            raise ReportMalformed(1, column, f"missing from the header (expected {','.join(COLUMNS)})")
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise ReportMalformed(1, unknown[0], "not a column of a settlement report")
    if len(set(names)) != len(names):
        raise ReportMalformed(1, "", "a column appears twice")
    position = {name: names.index(name) for name in COLUMNS}
    lines: list[ReportLine] = []
    try:
        for row in reader:
            line = reader.line_num
            if not row or row == [""]:
                continue
            if len(row) != len(names):
                raise ReportMalformed(line, "", f"{len(row)} fields, the header has {len(names)}")
            value = {name: row[index] for name, index in position.items()}
            for column in ("line_id", "provider_reference"):
                if len(value[column]) > MAX_TEXT:
                    raise ReportMalformed(line, column, f"longer than {MAX_TEXT} characters")
            if not value["line_id"].strip():
                raise ReportMalformed(line, "line_id", "empty")
            kind = value["type"].strip()
            if kind not in MOVEMENT_TYPES:
                raise ReportMalformed(line, "type", f"{kind!r} is not one of {', '.join(MOVEMENT_TYPES)}")
            reference = value["provider_reference"].strip()
            if kind in REFERENCED_TYPES and not reference:
                raise ReportMalformed(line, "provider_reference", f"empty, and a {kind} names its reference")
            currency = value["currency"].strip()
            if not currencies.is_supported(currency):
                raise ReportMalformed(line, "currency", f"{currency!r} is not a supported ISO 4217 code")
            gross, fee, net = (_integer(value[c], line, c) for c in ("gross", "fee", "net"))
            if fee < 0:
                raise ReportMalformed(line, "fee", f"{fee} is negative (a fee is what the provider kept)")
            if net != gross - fee:
                raise ReportMalformed(line, "net", f"{net} is not gross - fee ({gross} - {fee} = {gross - fee})")
            try:
                booked_at = parse_datetime(value["booked_at"].strip())
            except ValueError:
                booked_at = None
            if booked_at is None or booked_at.tzinfo is None:
                raise ReportMalformed(line, "booked_at", f"{value['booked_at']!r} is not an ISO 8601 timestamp "
                                                         "with a time zone")
            if not period_start <= booked_at < period_end:
                raise ReportMalformed(line, "booked_at", f"{booked_at.isoformat()} is outside the report's period "
                                                         f"[{period_start.isoformat()}, {period_end.isoformat()})")
            lines.append(ReportLine(line, value["line_id"].strip(), kind, reference, currency, gross, fee, net,
                                    booked_at))
    except csv.Error as exc:
        raise ReportMalformed(reader.line_num, "", f"not CSV ({exc})") from None
    return lines
