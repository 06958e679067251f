"""Reconciliation end to end, against the real database and a real Celery worker (issue 13):
yesterday's charges settle; the worker's daily job fetches the sandbox's report and matches it
(breaks of two kinds, fees posted); an amount mismatch is resolved by an adjusting posting that a
second key approves; the day is closed and a back-dated posting is refused; an evidence export
of the payment is built by the worker, downloaded, and verified offline by the standalone script
with only the published public keys.

The worker connects as the application role, as in production: what it reads and writes goes
through row-level security."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from ledger.models import LedgerTransaction
from payments.models import Provider, SettlementRecord, SettlementReport
from tests.payments.test_support import fund
from tests.webhooks.conftest import RedisServer, celery_broker, celery_worker

from .support import CHARGES, settled_desk

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def wait_for(check, *, timeout: float = 60.0, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"the worker did not {what} within {timeout:.0f} s; its log:\n{log.read_text()[-3000:]}")


def test_report_breaks_approval_close_export_and_offline_verification(tenant_a, tmp_path):
    # given: yesterday, four charges settled by sandbox-a and a payout paid; the provider's
    # report of that day leaves the first charge out and adds 100 to the second
    today = datetime.combine(timezone.now().date(), datetime.min.time(), tzinfo=UTC)
    with time_machine.travel(today - timedelta(hours=12), tick=True):
        desk = settled_desk(tenant_a)
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-a").update(report_faults=["drop", "change_amount"])
    broker, log = RedisServer().start(), tmp_path / "worker.log"
    try:
        with celery_broker(broker.url) as app, celery_worker(broker.url, log):
            # when: beat's daily job runs on the worker
            app.send_task("payments.tasks.settlement_reports_fetch_daily", retry=False)
            # then: yesterday's report fetched and matched, with a break of each kind it holds
            report = wait_for(lambda: SettlementReport.objects.filter(
                tenant=tenant_a.tenant, status=SettlementReport.MATCHED).first(), what="match the report", log=log)
            body = tenant_a.get(f"/v1/settlement_reports/{report.id}").json()
            # four charges less the dropped one, and the payout; the changed charge does not match
            assert len(CHARGES) == 4 and (body["lines"], body["matched"], body["breaks"]) == (4, 3, 2)
            assert body["period_start"] == (today - timedelta(days=1)).isoformat().replace("+00:00", "Z")
            breaks = tenant_a.get("/v1/reconciliation_breaks", report=report.id).json()["data"]
            assert sorted(b["kind"] for b in breaks) == ["amount_mismatch", "missing_in_report"]
            assert LedgerTransaction.objects.filter(tenant=tenant_a.tenant, kind="fee").count() == 1

            # when: the mismatch is resolved by an adjusting posting, proposed by one key and
            # approved by another
            [mismatch] = [b for b in breaks if b["kind"] == "amount_mismatch"]
            assert mismatch["actual"] - mismatch["expected"] == 100
            proposed = tenant_a.post(f"/v1/reconciliation_breaks/{mismatch['id']}/resolve", {
                "resolution": "adjusting_posting", "note": "the provider paid 100 more", "entries": [
                    {"account": desk.funding, "direction": "debit", "amount": 100},
                    {"account": desk.merchant, "direction": "credit", "amount": 100}]})
            assert proposed.status_code == 202, proposed.content
            approved = tenant_a.checker_client().post(
                f"/v1/approvals/{proposed.json()['id']}/approve", {"reason": "checked the report"},
                format="json", HTTP_IDEMPOTENCY_KEY="e2e-approve")
            # then: posted as the approval, naming both keys, and the break resolved
            assert approved.status_code == 200, approved.content
            decided = approved.json()
            adjustment = LedgerTransaction.objects.get(pk=decided["result"])
            assert adjustment.kind == "adjustment" and adjustment.actor == f"approval:{decided['id']}"
            assert decided["proposed_by"] != decided["decided_by"]
            resolved = tenant_a.get(f"/v1/reconciliation_breaks/{mismatch['id']}").json()
            assert (resolved["status"], resolved["adjustment_transaction"]) == ("resolved", adjustment.id)

            # when: yesterday is closed
            closed = tenant_a.post("/v1/ledger_periods/close", {"until": today.isoformat()})
            # then: the period holds its trial balance, and a posting dated into it is refused
            assert closed.status_code == 201, closed.content
            period = closed.json()
            assert period["accounts"] > 0 and period["trial_balance"]
            assert all(row["debits"] == row["credits"] for row in period["trial_balance"])
            backdated = tenant_a.post("/v1/transactions", {
                "effective_at": (today - timedelta(hours=1)).isoformat(), "entries": [
                    {"account": desk.funding, "direction": "debit", "amount": 5},
                    {"account": desk.customer, "direction": "credit", "amount": 5}]})
            assert backdated.status_code == 422 and backdated.json()["code"] == "period_closed"
            fund(tenant_a, desk.funding, desk.customer, 5)  # today's postings still go through
            balances = tenant_a.client.get(f"/v1/ledger_periods/{period['id']}/closing_balances.csv")
            assert balances.status_code == 200 and b"# signature algorithm=Ed25519" in balances.content

            # when: the payment's evidence is exported; the worker builds it
            intent = SettlementRecord.objects.get(tenant=tenant_a.tenant, type="charge",
                                                  provider_reference=mismatch["provider_reference"]).payment_intent_id
            asked = tenant_a.post("/v1/evidence_exports", {"resource": intent})
            assert asked.status_code == 202, asked.content
            export_id = asked.json()["id"]
            wait_for(lambda: tenant_a.get(f"/v1/evidence_exports/{export_id}").json()["status"] == "ready",
                     what="build the export", log=log)
    finally:
        broker.stop()
    download = tenant_a.get(f"/v1/evidence_exports/{export_id}/download")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    # then: it verifies offline, from an empty directory, with only the published keys
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / f"{export_id}.zip").write_bytes(download.content)
    (offline / "signing_keys.json").write_bytes(tenant_a.client.get("/v1/signing_keys").content)
    checked = subprocess.run([sys.executable, "-I", str(ROOT / "scripts" / "verify_export.py"),
                              f"{export_id}.zip", "--keys", "signing_keys.json"],
                             capture_output=True, text=True, cwd=offline, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"OK {export_id}.zip:")
    # and a byte changed in it is caught
    tampered = bytearray(download.content)
    tampered[len(tampered) // 2] ^= 0xFF
    (offline / "tampered.zip").write_bytes(bytes(tampered))
    refused = subprocess.run([sys.executable, "-I", str(ROOT / "scripts" / "verify_export.py"), "tampered.zip",
                              "--keys", "signing_keys.json"], capture_output=True, text=True, cwd=offline, timeout=60)
    assert refused.returncode != 0
