"""Reconciliation in the back office: a report uploaded by an operator, refused whole when
malformed; a break assigned, commented, resolved, and put right by an adjusting posting that
only a second person can approve; the dashboard's queue; a viewer who sees and cannot act."""

from __future__ import annotations

import pytest
from django.contrib.messages import ERROR, SUCCESS, WARNING
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import Approval
from backoffice.selectors.dashboard import dashboard_for
from ledger.models import BreakComment, LedgerTransaction, ReconciliationBreak
from payments.models import Provider, SettlementLine, SettlementRecord, SettlementReport
from tests.payments.test_support import balance

from .support import fee_accounts, sandbox_csv, settled_desk, today, upload
from .test_settlement_reports import matched

pytestmark = pytest.mark.django_db

BREAKS = "admin:ledger_reconciliationbreak_changelist"
APPROVALS = "admin:audit_approval_changelist"


def messages_of(response) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in response.context["messages"]]


def upload_form(client, provider: Provider, content: bytes):
    _, start, end = today()
    return client.post(reverse("admin:payments_settlementreport_add"), {
        "provider": provider.pk, "period_start_0": start.date().isoformat(), "period_start_1": "00:00:00",
        "period_end_0": end.date().isoformat(), "period_end_1": "00:00:00",
        "file": SimpleUploadedFile("report.csv", content, content_type="text/csv")})


def test_an_operator_uploads_a_report_and_a_malformed_one_is_refused_naming_the_line(client, tenant_a):
    settled_desk(tenant_a)
    provider = Provider.objects.get(tenant=tenant_a.tenant, name="sandbox-a")
    content = sandbox_csv(tenant_a)
    client.force_login(tenant_a.member("operator"))
    # when: a malformed report (a net that is not gross - fee on line 3)
    lines = content.decode().splitlines()
    fields = lines[2].split(",")
    fields[6] = str(int(fields[6]) + 1)
    bad = upload_form(client, provider, ("\n".join([*lines[:2], ",".join(fields), *lines[3:]]) + "\n").encode())
    # then: the form says where, and nothing is kept
    assert bad.status_code == 200
    errors = bad.context["adminform"].form.errors
    assert "line 3, column net" in str(errors)
    assert not SettlementReport.objects.exists() and not SettlementLine.objects.exists()
    # when: the report as the provider wrote it
    done = upload_form(client, provider, content)
    # then: received, waiting for a worker, and its page says so
    report = SettlementReport.objects.get()
    assert done.status_code == 302 and report.status == "matching" and report.lines == 5
    assert report.uploaded_by == f"user:{tenant_a.member('operator').pk}"
    page = client.get(reverse("admin:payments_settlementreport_change", args=[report.pk]))
    assert page.status_code == 200 and report.sha256 in page.content.decode()


def test_a_break_is_assigned_commented_and_put_right_by_two_people(client, tenant_a):
    desk = settled_desk(tenant_a)
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-a").update(report_faults=["change_amount"])
    matched(tenant_a, upload(tenant_a, sandbox_csv(tenant_a)).json()["id"])
    found = ReconciliationBreak.objects.get(kind="amount_mismatch")
    operator, owner = tenant_a.member("operator"), tenant_a.member("owner")
    client.force_login(operator)
    # when: the operator takes it and says what they found
    client.post(reverse(BREAKS), {"action": "assign_to_me", "_selected_action": [found.pk], "confirm": "yes"})
    client.post(reverse(BREAKS), {"action": "comment", "_selected_action": [found.pk], "confirm": "yes",
                                  "text": "provider portal shows 100 more"})
    found.refresh_from_db()
    assert found.assigned_to == f"user:{operator.pk}"
    assert BreakComment.objects.get(reconciliation_break=found).text == "provider portal shows 100 more"
    mine = client.get(reverse(BREAKS), {"state": "mine"})
    assert [b.pk for b in mine.context["cl"].result_list] == [found.pk]
    # when: they propose an adjusting posting
    settlement, _ = fee_accounts(tenant_a.tenant)
    proposed = client.post(reverse(BREAKS), {
        "action": "propose_adjustment", "_selected_action": [found.pk], "confirm": "yes",
        "note": "credit the difference to settlement",
        "account_0": desk.funding, "direction_0": "debit", "amount_0": "100",
        "account_1": settlement.id, "direction_1": "credit", "amount_1": "100"}, follow=True)
    # then: it waits for a second person; nothing is posted
    assert any(level == WARNING and "waiting for a second person" in text for level, text in messages_of(proposed))
    approval = Approval.objects.get(target=found.pk)
    assert approval.status == "pending" and not LedgerTransaction.objects.filter(kind="adjustment").exists()
    # when: the proposer approves their own
    own = client.post(reverse(APPROVALS), {"action": "approve", "_selected_action": [approval.pk],
                                           "confirm": "yes", "reason": ""}, follow=True)
    assert any(level == ERROR and "permission_denied" in text for level, text in messages_of(own))
    # when: the owner approves it
    settlement_before = balance(settlement.id)
    client.force_login(owner)
    approved = client.post(reverse(APPROVALS), {"action": "approve", "_selected_action": [approval.pk],
                                                "confirm": "yes", "reason": "checked"}, follow=True)
    assert (SUCCESS, "Approve: 1 done.") in messages_of(approved)
    # then: posted and resolved, the history naming the approval that names both people
    found.refresh_from_db()
    txn = LedgerTransaction.objects.get(pk=found.adjustment_transaction_id)
    assert (found.status, found.resolution, txn.kind) == ("resolved", "adjusting_posting", "adjustment")
    assert balance(settlement.id) == settlement_before + 100
    approval.refresh_from_db()
    assert (approval.proposed_by, approval.decided_by) == (f"user:{operator.pk}", f"user:{owner.pk}")
    assert found.history.first().history_actor == f"approval:{approval.pk}"
    page = client.get(reverse("admin:ledger_reconciliationbreak_change", args=[found.pk]))
    assert page.status_code == 200 and approval.pk in page.content.decode() and txn.id in page.content.decode()


def test_a_viewer_sees_breaks_and_approvals_and_is_offered_no_action(client, tenant_a):
    settled_desk(tenant_a)
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-a").update(report_faults=["drop"])
    matched(tenant_a, upload(tenant_a, sandbox_csv(tenant_a)).json()["id"])
    viewer = tenant_a.member("viewer")
    client.force_login(viewer)
    for name in (BREAKS, APPROVALS, "admin:payments_settlementreport_changelist"):
        page = client.get(reverse(name))
        assert page.status_code == 200
        form = page.context.get("action_form")
        assert form is None or not [v for v, _ in form.fields["action"].choices if v], name
    found = ReconciliationBreak.objects.get(kind="missing_in_report")
    forged = client.post(reverse(BREAKS), {"action": "resolve", "_selected_action": [found.pk], "confirm": "yes",
                                           "resolution": "false_positive", "note": "x"})
    assert forged.status_code == 403
    assert ReconciliationBreak.objects.get(pk=found.pk).status == "open"
    assert client.get(reverse("admin:payments_settlementreport_add")).status_code == 403


def test_the_dashboard_shows_approvals_waiting_and_open_settlement_breaks(client, tenant_a):
    desk = settled_desk(tenant_a)
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-a").update(report_faults=["drop", "duplicate"])
    matched(tenant_a, upload(tenant_a, sandbox_csv(tenant_a)).json()["id"])
    found = ReconciliationBreak.objects.get(kind="missing_in_report")
    tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve", {
        "resolution": "adjusting_posting", "note": "n", "entries": [
            {"account": desk.funding, "direction": "debit", "amount": 1},
            {"account": desk.merchant, "direction": "credit", "amount": 1}]})
    tiles = {tile.title: tile for _, section in dashboard_for(tenant_a.member("operator"))["dashboard_sections"]
             for tile in section}
    assert tiles["Approvals waiting"].value == "1"
    assert tiles["Approvals waiting"].rows[0][0] == "Adjusting posting"
    assert tiles["Settlement breaks open"].value == "2"
    assert dict(tiles["Settlement breaks open"].rows) == {"duplicate line": "1", "missing in report": "1"}
    assert client.get(tiles["Settlement breaks open"].url).status_code in (200, 302)


def test_the_trace_of_a_payment_shows_its_settlement_the_report_and_the_break(tenant_a):
    settled_desk(tenant_a, charges=(10_000, 20_000))
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-a").update(report_faults=["change_amount"])
    matched(tenant_a, upload(tenant_a, sandbox_csv(tenant_a)).json()["id"])
    found = ReconciliationBreak.objects.get(kind="amount_mismatch")
    record = SettlementRecord.objects.get(provider_reference=found.provider_reference)
    items = tenant_a.get(f"/v1/trace/{record.payment_intent_id}").json()["items"]
    reconciliation = [item["summary"] for item in items if item["kind"] == "reconciliation"]
    assert any("settled by sandbox-a: awaiting the provider's report" in text for text in reconciliation)
    assert any(text.startswith("break amount_mismatch (open)") for text in reconciliation)
