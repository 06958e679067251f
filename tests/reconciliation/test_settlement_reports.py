"""Settlement reports against the ledger (../shared/API.md, Reconciliation): the sandbox's own
report, uploaded through the API and matched in set-based SQL; its fees posted; a malformed
report refused whole; the same file twice a 409; every kind of break from the sandbox's fault
knob; real-time matching of each settlement as it arrives."""

from __future__ import annotations

import pytest

from ledger.models import LedgerTransaction, ReconciliationBreak, ReconciliationRun, logical_account_of
from ledger.selectors import posted_balance
from payments.models import PaymentIntent, Provider, SettlementLine, SettlementRecord, SettlementReport
from payments.services.settlement.sandbox_report import charge_fee
from payments.tasks import settlement_report_match_task
from webhooks.models import Event

from .support import CHARGES, fee_accounts, records, sandbox_csv, settled_desk, today, upload

pytestmark = pytest.mark.django_db


def matched(ctx, report_id: str) -> dict:
    """What the worker does with an uploaded report (the task itself), then the API's view of it."""
    assert settlement_report_match_task(ctx.tenant.id, report_id) == "matched"
    response = ctx.get(f"/v1/settlement_reports/{report_id}")
    assert response.status_code == 200, response.content
    return response.json()


def test_each_settlement_is_matched_to_its_intent_as_it_arrives(tenant_a):
    # when: four charges settle and a payout is paid
    desk = settled_desk(tenant_a)
    # then: the ledger's record of each, with its intent and posting, awaits the provider's report
    found = list(records(tenant_a.tenant))
    assert sorted((r.type, r.gross) for r in found) == sorted(
        [("charge", amount) for amount in CHARGES] + [("payout", -5_000)])
    for record in found:
        assert record.report_id is None and record.provider.name == "sandbox-a"
        if record.type == "charge":
            intent = PaymentIntent.objects.get(pk=record.payment_intent_id)
            assert (intent.status, intent.provider_reference) == ("succeeded", record.provider_reference)
            assert LedgerTransaction.objects.get(pk=record.transaction_id).kind == "settlement"
    assert desk.balances()["merchant"] == sum(CHARGES) - 5_000


def test_the_sandbox_report_matches_line_for_line_and_its_fees_post_in_one_transaction(tenant_a):
    settled_desk(tenant_a)
    settlement, fees = fee_accounts(tenant_a.tenant)
    settlement_before = posted_balance(settlement)
    # given: the sandbox's own report of today: four charges with their fees, one payout
    content = sandbox_csv(tenant_a)
    lines = content.decode().splitlines()
    assert lines[0] == "line_id,type,provider_reference,currency,gross,fee,net,booked_at"
    assert len(lines) == 1 + len(CHARGES) + 1
    # when: it is uploaded, and matched by the worker
    response = upload(tenant_a, content)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["object"], body["status"], body["lines"]) == ("settlement_report", "matching", 5)
    report = matched(tenant_a, body["id"])
    # then: every line matched, no break, and the fees (2.9% + 30 on each charge) posted once
    expected_fees = sum(charge_fee(amount) for amount in CHARGES)
    assert (report["status"], report["matched"], report["breaks"], report["fees_posted"]) == (
        "matched", 5, 0, expected_fees)
    fee_txn = LedgerTransaction.objects.get(pk=report["fee_transaction"])
    assert fee_txn.kind == "fee" and fee_txn.metadata == {"settlement_report": report["id"]}
    assert sorted((logical_account_of(e.account_id)[0], e.direction, e.amount)
                  for e in fee_txn.entries.all()) == sorted(
        [(settlement.id, "debit", expected_fees), (fees.id, "credit", expected_fees)])
    assert (posted_balance(settlement), posted_balance(fees)) == (settlement_before - expected_fees, expected_fees)
    # and the report confirmed every record; its run is clean; an event says so
    assert not records(tenant_a.tenant).filter(report__isnull=True).exists()
    assert ReconciliationRun.objects.get(pk=SettlementReport.objects.get(pk=report["id"]).run_id).status == "ok"
    assert Event.objects.filter(type="settlement_report.matched", resource_id=report["id"]).count() == 1
    # and matching again changes nothing (a task delivered twice)
    assert settlement_report_match_task(tenant_a.tenant.id, report["id"]) == "matched"
    assert LedgerTransaction.objects.filter(tenant=tenant_a.tenant, kind="fee").count() == 1


def test_the_same_file_twice_is_a_409_and_nothing_more_is_kept(tenant_a):
    settled_desk(tenant_a)
    content = sandbox_csv(tenant_a)
    first = upload(tenant_a, content)
    assert first.status_code == 202
    # when: the same bytes again, under another Idempotency-Key
    again = upload(tenant_a, content, key="another-key")
    # then
    assert again.status_code == 409, again.content
    assert again.json()["code"] == "duplicate_report"
    assert first.json()["id"] in again.json()["detail"]
    assert SettlementReport.objects.filter(tenant=tenant_a.tenant).count() == 1
    assert SettlementLine.objects.filter(tenant=tenant_a.tenant).count() == 6 - 1


@pytest.mark.parametrize(("mangle", "where"), [
    (lambda lines: [lines[0].replace("fee,", "fees,")] + lines[1:], "line 1: fee"),
    (lambda lines: lines[:2] + [lines[2].replace(",charge,", ",chargeback,")] + lines[3:], "line 3: type"),
    (lambda lines: lines[:3] + [lines[3].rsplit(",", 1)[0] + ",yesterday"] + lines[4:], "line 4: booked_at"),
    (lambda lines: lines[:1] + [lines[1].replace(",USD,", ",XXX,")] + lines[2:], "line 2: currency"),
    (lambda lines: lines + ["x,charge,ref,USD,100,3,90,2026-01-01T00:00:00Z"], "line 7: net"),
    (lambda lines: lines + ["x,charge,ref,USD,1.5,0,1.5,2026-01-01T00:00:00Z"], "line 7: gross"),
])
def test_a_malformed_report_is_refused_whole_naming_line_and_column(tenant_a, mangle, where):
    settled_desk(tenant_a)
    lines = sandbox_csv(tenant_a).decode().splitlines()
    # when
    response = upload(tenant_a, ("\n".join(mangle(lines)) + "\n").encode())
    # then: 400, the line and column named, and nothing kept
    assert response.status_code == 400, response.content
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [error["field"] for error in problem["errors"]] == [where]
    assert not SettlementReport.objects.exists() and not SettlementLine.objects.exists()


def test_a_report_outside_its_period_and_a_report_that_is_not_text_are_refused(tenant_a):
    settled_desk(tenant_a)
    _, start, end = today()
    content = sandbox_csv(tenant_a)
    outside = upload(tenant_a, content, start=end, end=end.replace(year=end.year + 1))
    assert outside.status_code == 400 and outside.json()["errors"][0]["field"] == "line 2: booked_at"
    binary = upload(tenant_a, b"\xff\xfe\x00garbage")
    assert binary.status_code == 400 and "not UTF-8" in binary.json()["detail"]
    backwards = upload(tenant_a, content, start=end, end=start)
    assert backwards.status_code == 400 and backwards.json()["errors"][0]["field"] == "period_end"
    assert not SettlementReport.objects.exists()


def test_every_kind_of_break_from_a_misbehaving_sandbox(tenant_a):
    settled_desk(tenant_a)
    # given: the sandbox drops, changes, duplicates and invents lines
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-a").update(report_faults=[
        "drop", "change_amount", "change_currency", "duplicate", "unknown_reference"])
    report = matched(tenant_a, upload(tenant_a, sandbox_csv(tenant_a)).json()["id"])
    # then: one break of each kind, each naming what disagreed
    breaks = {b["kind"]: b for b in tenant_a.get("/v1/reconciliation_breaks", report=report["id"]).json()["data"]}
    assert set(breaks) == {"missing_in_report", "amount_mismatch", "currency_mismatch", "duplicate_line",
                           "missing_in_ledger"}
    assert (report["breaks"], report["matched"]) == (5, 2)  # the fourth charge and the payout
    dropped, changed = CHARGES[0], CHARGES[1]
    assert (breaks["missing_in_report"]["expected"], breaks["missing_in_report"]["actual"]) == (dropped, None)
    assert (breaks["amount_mismatch"]["expected"], breaks["amount_mismatch"]["actual"]) == (changed, changed + 100)
    assert breaks["currency_mismatch"]["currency"] == "EUR" and "USD in the ledger" in breaks["currency_mismatch"][
        "detail"]
    assert breaks["missing_in_ledger"]["provider_reference"].startswith("sbx_unknown_")
    assert "already reported as line" in breaks["duplicate_line"]["detail"]
    assert all(b["status"] == "open" and b["report"] == report["id"] for b in breaks.values())
    # and the run of the report is broken; the matched records alone are confirmed
    assert ReconciliationRun.objects.get(pk=SettlementReport.objects.get(pk=report["id"]).run_id).status == "broken"
    assert records(tenant_a.tenant).filter(report__isnull=False).count() == 2
    # and a filter the list does not know is a 400
    assert tenant_a.get("/v1/reconciliation_breaks", status="closed").status_code == 400


def test_a_line_already_confirmed_by_an_earlier_report_is_a_duplicate(tenant_a):
    settled_desk(tenant_a)
    content = sandbox_csv(tenant_a)
    matched(tenant_a, upload(tenant_a, content).json()["id"])
    # when: the provider reports the same movements again, in another file
    again = matched(tenant_a, upload(tenant_a, content.replace(b"sandbox-a-", b"resent-")).json()["id"])
    # then: every line is a duplicate, and no fee is posted twice
    assert (again["matched"], again["breaks"], again["fees_posted"]) == (0, 5, 0)
    kinds = set(ReconciliationBreak.objects.filter(report_id=again["id"]).values_list("kind", flat=True))
    assert kinds == {"duplicate_line"}


def test_another_tenants_report_and_provider_are_404(tenant_a, tenant_b):
    settled_desk(tenant_a)
    report = upload(tenant_a, sandbox_csv(tenant_a)).json()
    provider_a = Provider.objects.get(tenant=tenant_a.tenant, name="sandbox-a")
    assert tenant_b.get(f"/v1/settlement_reports/{report['id']}").status_code == 404
    assert tenant_b.get(f"/v1/providers/{provider_a.id}/settlement_report", date=today()[0]).status_code == 404
    assert tenant_b.get("/v1/settlement_reports").json()["data"] == []
    assert SettlementRecord.objects.filter(tenant=tenant_b.tenant).count() == 0
