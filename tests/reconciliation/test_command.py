"""`manage.py reconcile_report`: a provider's report received and matched in the command's own
process, with its summary; the refusals as one-line CommandErrors that keep nothing; `--fetch`
runs the daily job's fetch for one tenant and day."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from payments.models import Provider, SettlementLine, SettlementReport
from payments.services.settlement.sandbox_report import charge_fee

from .support import CHARGES, records, sandbox_csv, settled_desk, today

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def reconcile(ctx, path, *extra: str, stderr=None) -> str:
    provider = Provider.objects.get(tenant=ctx.tenant, name="sandbox-a")
    _, start, end = today()
    out = io.StringIO()
    call_command("reconcile_report", str(path), "--provider", provider.id, "--period-start", start.isoformat(),
                 "--period-end", end.isoformat(), *extra, stdout=out, stderr=stderr or io.StringIO())
    return out.getvalue()


def test_the_command_matches_a_sandbox_report_and_prints_its_summary(tenant_a, tmp_path):
    # given: today's movements, and the sandbox's report of them in a file
    settled_desk(tenant_a)
    path = tmp_path / "report.csv"
    path.write_bytes(sandbox_csv(tenant_a))
    # when: the tenant is found from the provider
    output = reconcile(tenant_a, path)
    # then: the report is matched, every record confirmed, and the summary says so
    report = SettlementReport.objects.get(tenant=tenant_a.tenant)
    fees = sum(charge_fee(amount) for amount in CHARGES)
    assert (report.status, report.lines, report.matched, report.breaks, report.fees_posted) == (
        "matched", 5, 5, 0, fees)
    assert not records(tenant_a.tenant).filter(report__isnull=True).exists()
    assert f"report {report.id} " in output
    assert f"lines 5  matched 5  breaks 0  fees posted {fees}" in output
    assert "breaks by kind: none" in output
    assert "elapsed " in output


def test_on_a_terminal_the_steps_are_drawn_as_a_progress_bar_and_breaks_are_counted_by_kind(tenant_a, tmp_path):
    settled_desk(tenant_a)
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-a").update(report_faults=["drop", "change_amount"])
    path = tmp_path / "report.csv"
    path.write_bytes(sandbox_csv(tenant_a))
    terminal = Terminal()
    # when
    output = reconcile(tenant_a, path, "--tenant", tenant_a.tenant.slug, stderr=terminal)
    # then
    drawn = terminal.getvalue()
    assert "receive: parse, check, store" in drawn and "match: ledger records" in drawn
    assert drawn.rstrip().endswith("7/7 done")
    assert "breaks by kind: amount_mismatch 1, missing_in_report 1" in output


def test_a_malformed_report_is_a_command_error_naming_line_and_column_and_nothing_is_kept(tenant_a, tmp_path):
    settled_desk(tenant_a)
    lines = sandbox_csv(tenant_a).decode().splitlines()
    lines[2] = lines[2].replace(",charge,", ",chargeback,")
    path = tmp_path / "report.csv"
    path.write_text("\n".join(lines) + "\n")
    # when
    with pytest.raises(CommandError) as refused:
        reconcile(tenant_a, path)
    # then: one line, naming where the fault is
    message = str(refused.value)
    assert "line 3, column type" in message and "\n" not in message
    assert not SettlementReport.objects.exists() and not SettlementLine.objects.exists()


def test_the_same_file_twice_is_a_command_error_and_nothing_more_is_kept(tenant_a, tmp_path):
    settled_desk(tenant_a)
    path = tmp_path / "report.csv"
    path.write_bytes(sandbox_csv(tenant_a))
    reconcile(tenant_a, path)
    first = SettlementReport.objects.get(tenant=tenant_a.tenant)
    # when
    with pytest.raises(CommandError) as refused:
        reconcile(tenant_a, path)
    # then
    assert str(refused.value).startswith("duplicate report: ") and first.id in str(refused.value)
    assert SettlementReport.objects.count() == 1 and SettlementLine.objects.count() == 5


def test_an_unknown_provider_a_missing_file_and_another_tenants_provider_are_command_errors(tenant_a, tenant_b,
                                                                                           tmp_path):
    settled_desk(tenant_a)
    path = tmp_path / "report.csv"
    path.write_bytes(sandbox_csv(tenant_a))
    _, start, end = today()
    period = ["--period-start", start.isoformat(), "--period-end", end.isoformat()]
    with pytest.raises(CommandError, match="unknown provider prv_nope"):
        call_command("reconcile_report", str(path), "--provider", "prv_nope", *period)
    with pytest.raises(CommandError, match="no such file: .*missing.csv"):
        reconcile(tenant_a, tmp_path / "missing.csv")
    with pytest.raises(CommandError, match=f"unknown provider .* in tenant {tenant_b.tenant.slug}"):
        reconcile(tenant_a, path, "--tenant", tenant_b.tenant.slug)
    assert not SettlementReport.objects.exists()


def test_fetch_matches_the_days_report_of_the_tenants_sandbox_providers(tenant_a):
    settled_desk(tenant_a)
    out = io.StringIO()
    # when
    call_command("reconcile_report", "--fetch", today()[0], "--tenant", tenant_a.tenant.slug, stdout=out)
    # then: sandbox-a's report (sandbox-b booked nothing) fetched and matched
    report = SettlementReport.objects.get(tenant=tenant_a.tenant)
    assert (report.source, report.status, report.matched, report.breaks) == ("fetched", "matched", 5, 0)
    assert f"report {report.id} " in out.getvalue()
    assert f"fetched 1 report(s) of {tenant_a.tenant.slug}" in out.getvalue()
    # and again: the same report is not fetched twice
    again = io.StringIO()
    call_command("reconcile_report", "--fetch", today()[0], "--tenant", tenant_a.tenant.slug, stdout=again)
    assert "fetched 0 report(s)" in again.getvalue() and SettlementReport.objects.count() == 1
