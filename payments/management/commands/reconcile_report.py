"""`manage.py reconcile_report FILE --provider prv_... --period-start ISO --period-end ISO`: a
provider's settlement report received and matched in this process (no worker), through the same
services as the API's upload; `--fetch DAY` fetches and matches the day's reports of the tenant's
sandbox providers, as the daily job does. Prints what matching found."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from audit.actors import Actor
from ledger.models import ReconciliationBreak
from payments.models import Provider, SettlementReport
from payments.services.settlement.fetch import settlement_reports_fetch
from payments.services.settlement.reports import (
    MATCH_STEPS,
    DuplicateReport,
    settlement_report_fail,
    settlement_report_match,
    settlement_report_receive,
)
from tenants.models import Tenant
from tenants.scope import platform_scope
from zentra.errors import ZentraError
from zentra.progress import ProgressBar

ACTOR = Actor.system("reconcile_report")


def _instant(value: str, option: str) -> datetime:
    """An ISO 8601 instant with its time zone, or a date (its midnight, UTC)."""
    try:
        day = parse_date(value)  # a bare date only: parse_datetime would read it as a naive midnight
        instant = None if day else parse_datetime(value)
    except ValueError:
        instant = day = None
    if day is not None:
        return datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    if instant is None or instant.tzinfo is None:
        raise CommandError(f"{option} {value!r} is not an ISO 8601 instant with a time zone (or a date, read as "
                           "midnight UTC)")
    return instant


class Command(BaseCommand):
    help = ("Receive a provider's settlement report (CSV) and match it against the ledger in this process; "
            "or, with --fetch DAY, fetch and match that day's reports of the tenant's sandbox providers.")

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", metavar="FILE", help="the report, a CSV in the contract's columns")
        parser.add_argument("--provider", metavar="PRV_ID", help="the provider whose report FILE is")
        parser.add_argument("--period-start", metavar="ISO", help="the report's period, from (inclusive)")
        parser.add_argument("--period-end", metavar="ISO", help="the report's period, until (exclusive)")
        parser.add_argument("--tenant", metavar="SLUG", help="the provider's tenant (found from the provider if not "
                                                             "given)")
        parser.add_argument("--fetch", metavar="YYYY-MM-DD", help="instead of FILE: fetch and match that day's (UTC) "
                                                                  "reports of every sandbox provider of the tenant "
                                                                  "(--tenant, or --provider's tenant)")

    def handle(self, *args, file=None, provider=None, period_start=None, period_end=None, tenant=None, fetch=None,
               **options):
        if bool(file) == bool(fetch):
            raise CommandError("give either FILE or --fetch YYYY-MM-DD")
        # A shell operator: every tenant in the database context (the schema owner reads across them anyway).
        with platform_scope():
            scope, found = self._tenant_and_provider(tenant, provider)
            if fetch:
                if period_start or period_end:
                    raise CommandError("--period-start and --period-end go with FILE; --fetch reports one day")
                self._fetch(scope, fetch)
            else:
                if found is None:
                    raise CommandError("FILE needs --provider prv_...")
                if not (period_start and period_end):
                    raise CommandError("FILE needs --period-start and --period-end")
                self._reconcile(scope, found, Path(file), _instant(period_start, "--period-start"),
                                _instant(period_end, "--period-end"))

    def _tenant_and_provider(self, slug: str | None, provider_id: str | None) -> tuple[Tenant, Provider | None]:
        scope = None
        if slug:
            scope = Tenant.objects.filter(slug=slug).first()
            if scope is None:
                raise CommandError(f"no tenant with slug {slug!r}")
        if not provider_id:
            if scope is None:
                raise CommandError("give --provider prv_... or --tenant SLUG")
            return scope, None
        providers = Provider.objects.select_related("tenant").filter(pk=provider_id)
        if scope is not None:
            providers = providers.filter(tenant=scope)
        found = providers.first()
        if found is None:
            raise CommandError(f"unknown provider {provider_id}" + (f" in tenant {slug}" if slug else ""))
        return found.tenant, found

    def _reconcile(self, tenant: Tenant, provider: Provider, path: Path, start: datetime, end: datetime) -> None:
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise CommandError(f"no such file: {path}") from None
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        bar = ProgressBar(stream=self.stderr) if self.stderr.isatty() else None
        total = MATCH_STEPS + 1  # receiving (parse, check, store), then each step of matching
        started = time.monotonic()
        try:
            if bar:
                bar(0, total, "receive: parse, check, store")
            try:
                report = settlement_report_receive(tenant=tenant, provider_id=provider.id, content=content,
                                                   period_start=start, period_end=end, actor=ACTOR)
            except DuplicateReport as exc:
                raise CommandError(f"duplicate report: {exc.detail}") from None
            except ZentraError as exc:
                raise CommandError(exc.detail) from None  # a malformed report's detail names its line and column
            received = time.monotonic()
            try:
                report = settlement_report_match(
                    tenant=tenant, report_id=report.id, actor=ACTOR,
                    # The service ticks as each step starts: receiving and the steps before it are done.
                    progress=(lambda step, number, steps: bar(number, 1 + steps, f"match: {step}")) if bar else None)
            except Exception as exc:
                # As the worker does: the report says it failed, and why, rather than waiting for a sweep.
                settlement_report_fail(tenant=tenant, report_id=report.id, actor=ACTOR,
                                       reason=f"{type(exc).__name__}: {exc}")
                raise CommandError(f"report {report.id} was received but could not be matched: "
                                   f"{type(exc).__name__}: {exc}") from exc
            if bar:
                bar(total, total, "done")
        finally:
            if bar:
                bar.end()
        finished = time.monotonic()
        self._summary(report, f"{finished - started:.1f}s (receive {received - started:.1f}s, match "
                              f"{finished - received:.1f}s)")

    def _fetch(self, tenant: Tenant, value: str) -> None:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--fetch {value!r} is not a date (YYYY-MM-DD)") from None
        started = time.monotonic()
        try:
            reports = settlement_reports_fetch(tenant=tenant, day=day, actor=ACTOR)
        except ZentraError as exc:
            raise CommandError(exc.detail) from None
        for report in reports:
            self._summary(report, None)
        self.stdout.write(f"fetched {len(reports)} report(s) of {tenant.slug} for {day} in "
                          f"{time.monotonic() - started:.1f}s")

    def _summary(self, report: SettlementReport, elapsed: str | None) -> None:
        kinds = Counter(ReconciliationBreak.objects.filter(report_id=report.id).values_list("kind", flat=True))
        breaks = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) or "none"
        status = self.style.SUCCESS(report.status) if report.status == SettlementReport.MATCHED else \
            self.style.ERROR(report.status)
        self.stdout.write(f"report {report.id} ({report.provider_id}, {report.period_start.isoformat()} .. "
                          f"{report.period_end.isoformat()}): {status}")
        self.stdout.write(f"  lines {report.lines}  matched {report.matched}  breaks {report.breaks}  "
                          f"fees posted {report.fees_posted}")
        self.stdout.write(f"  breaks by kind: {breaks}")
        if elapsed:
            self.stdout.write(f"  elapsed {elapsed}")
