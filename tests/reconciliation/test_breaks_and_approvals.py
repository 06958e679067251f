"""Breaks worked to the end, and maker-checker (../shared/API.md, Reconciliation and Approvals):
resolved as a false positive or a provider claim at once; an adjusting posting proposed as an
approval, never decided by its proposer, run on approval through the posting service with both
people named; rejections, expiry, and the database refusing what Python would not do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AccessDenial, Approval
from ledger.models import LedgerTransaction, ReconciliationBreak, logical_account_of
from payments.models import Provider
from tests.payments.test_support import balance

from .support import fee_accounts, sandbox_csv, settled_desk, upload
from .test_settlement_reports import matched

pytestmark = pytest.mark.django_db


@pytest.fixture
def broken(tenant_a):
    """A matched report with an amount mismatch (the provider reported 100 more than the ledger)."""
    desk = settled_desk(tenant_a)
    Provider.objects.filter(tenant=tenant_a.tenant, name="sandbox-a").update(report_faults=["change_amount"])
    report = matched(tenant_a, upload(tenant_a, sandbox_csv(tenant_a)).json()["id"])
    found = ReconciliationBreak.objects.get(report_id=report["id"], kind="amount_mismatch")
    return desk, found


def post(client, path, body, key):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_false_positive_is_resolved_at_once_with_its_note_and_history(tenant_a, broken):
    _, found = broken
    response = tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve",
                             {"resolution": "false_positive", "note": "provider rounding, confirmed by phone"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["resolution"], body["note"]) == (
        "resolved", "false_positive", "provider rounding, confirmed by phone")
    assert body["resolved_by"].startswith("api_key:")
    assert found.history.first().history_change_reason == "resolved: false_positive"
    # and a second resolution is a 409, changing nothing
    again = tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve",
                          {"resolution": "provider_claim", "note": "claim 42"})
    assert again.status_code == 409 and again.json()["code"] == "invalid_state_transition"
    assert ReconciliationBreak.objects.get(pk=found.pk).resolution == "false_positive"


def test_a_resolution_without_a_note_or_of_an_unknown_kind_is_400_and_nothing_changes(tenant_a, broken):
    _, found = broken
    for body in ({"resolution": "false_positive", "note": ""}, {"resolution": "ignored", "note": "x"},
                 {"resolution": "adjusting_posting", "note": "no entries"}):
        response = tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve", body)
        assert response.status_code == 400, (body, response.content)
    assert ReconciliationBreak.objects.get(pk=found.pk).status == "open"
    assert not Approval.objects.exists()


def test_an_adjusting_posting_needs_a_second_actor_and_then_posts_and_resolves(tenant_a, broken):
    desk, found = broken
    settlement, fees = fee_accounts(tenant_a.tenant)
    settlement_before, merchant_before = balance(settlement.id), balance(desk.merchant)
    entries = [{"account": settlement.id, "direction": "credit", "amount": 100},
               {"account": desk.merchant, "direction": "credit", "amount": 100},
               {"account": desk.funding, "direction": "debit", "amount": 200}]
    # when: the maker proposes it
    proposed = tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve", {
        "resolution": "adjusting_posting", "note": "provider paid 100 more; credit it", "entries": entries})
    # then: 202 with the approval; nothing posted, the break still open
    assert proposed.status_code == 202, proposed.content
    approval = proposed.json()
    assert (approval["object"], approval["action"], approval["status"]) == ("approval", "adjusting_posting", "pending")
    assert approval["payload"]["entries"] == entries and approval["target"] == found.id
    assert not LedgerTransaction.objects.filter(kind="adjustment").exists()
    # when: the proposer tries to approve their own
    own = tenant_a.post(f"/v1/approvals/{approval['id']}/approve", {"reason": "looks right"})
    # then: 403, with evidence, and nothing happens
    assert own.status_code == 403 and own.json()["code"] == "permission_denied"
    assert AccessDenial.objects.filter(action="approve approval", target=approval["id"]).count() == 1
    assert Approval.objects.get(pk=approval["id"]).status == "pending"
    # when: a second key approves
    checker = tenant_a.checker_client()
    approved = post(checker, f"/v1/approvals/{approval['id']}/approve", {"reason": "checked the report"}, "ok-1")
    # then: the posting ran through the posting service, naming both actors, and the break is resolved
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert body["status"] == "approved" and body["decided_by"] != body["proposed_by"]
    txn = LedgerTransaction.objects.get(pk=body["result"])
    assert txn.kind == "adjustment" and txn.actor == f"approval:{approval['id']}"
    assert (txn.metadata["proposed_by"], txn.metadata["approved_by"]) == (body["proposed_by"], body["decided_by"])
    assert sorted((logical_account_of(e.account_id)[0], e.direction, e.amount) for e in txn.entries.all()) == sorted(
        (e["account"], e["direction"], e["amount"]) for e in entries)
    assert (balance(settlement.id), balance(desk.merchant)) == (settlement_before + 100, merchant_before + 100)
    resolved = tenant_a.get(f"/v1/reconciliation_breaks/{found.id}").json()
    assert (resolved["status"], resolved["resolution"], resolved["adjustment_transaction"]) == (
        "resolved", "adjusting_posting", txn.id)
    # and deciding again is a 409
    again = post(checker, f"/v1/approvals/{approval['id']}/approve", {}, "ok-2")
    assert again.status_code == 409 and LedgerTransaction.objects.filter(kind="adjustment").count() == 1


def test_an_approval_the_posting_service_refuses_stays_pending(tenant_a, broken):
    desk, found = broken
    # given: an adjustment that would take more than the customer holds
    entries = [{"account": desk.customer, "direction": "debit", "amount": 10**9},
               {"account": desk.merchant, "direction": "credit", "amount": 10**9}]
    approval = tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve", {
        "resolution": "adjusting_posting", "note": "too much", "entries": entries}).json()
    # when
    refused = post(tenant_a.checker_client(), f"/v1/approvals/{approval['id']}/approve", {}, "try")
    # then: the posting service's refusal, and nothing half-done
    assert refused.status_code == 422 and refused.json()["code"] == "insufficient_funds"
    assert Approval.objects.get(pk=approval["id"]).status == "pending"
    assert ReconciliationBreak.objects.get(pk=found.pk).status == "open"
    # and it can be rejected instead, by the second person
    rejected = post(tenant_a.checker_client(), f"/v1/approvals/{approval['id']}/reject",
                    {"reason": "wrong account"}, "r")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert ReconciliationBreak.objects.get(pk=found.pk).status == "open"


def test_a_second_proposal_for_the_same_break_waits_for_the_first(tenant_a, broken):
    desk, found = broken
    body = {"resolution": "adjusting_posting", "note": "n", "entries": [
        {"account": desk.funding, "direction": "debit", "amount": 1},
        {"account": desk.merchant, "direction": "credit", "amount": 1}]}
    assert tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve", body).status_code == 202
    second = tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve", body)
    assert second.status_code == 409 and second.json()["code"] == "invalid_state_transition"
    assert Approval.objects.count() == 1


def test_an_expired_approval_cannot_be_decided(tenant_a, broken, clock):
    desk, found = broken
    approval = tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve", {
        "resolution": "adjusting_posting", "note": "n", "entries": [
            {"account": desk.funding, "direction": "debit", "amount": 1},
            {"account": desk.merchant, "direction": "credit", "amount": 1}]}).json()
    clock.forward(timedelta(hours=73).total_seconds())
    late = post(tenant_a.checker_client(), f"/v1/approvals/{approval['id']}/approve", {}, "late")
    assert late.status_code == 409
    assert Approval.objects.get(pk=approval["id"]).status == "expired"
    assert not LedgerTransaction.objects.filter(kind="adjustment").exists()
    listed = tenant_a.get("/v1/approvals", status="expired").json()["data"]
    assert [a["id"] for a in listed] == [approval["id"]]


def test_another_tenants_break_and_approval_are_404(tenant_a, tenant_b, broken):
    desk, found = broken
    approval = tenant_a.post(f"/v1/reconciliation_breaks/{found.id}/resolve", {
        "resolution": "adjusting_posting", "note": "n", "entries": [
            {"account": desk.funding, "direction": "debit", "amount": 1},
            {"account": desk.merchant, "direction": "credit", "amount": 1}]}).json()
    assert tenant_b.get(f"/v1/reconciliation_breaks/{found.id}").status_code == 404
    assert tenant_b.post(f"/v1/approvals/{approval['id']}/approve").status_code == 404
    assert AccessDenial.objects.filter(target=approval["id"], tenant_id=tenant_b.tenant.id).exists()
    assert Approval.objects.get(pk=approval["id"]).status == "pending"


def test_the_database_refuses_a_decision_by_the_proposer_and_a_half_resolved_break(tenant_a, broken):
    desk, found = broken
    approval = Approval.objects.create(tenant_id=tenant_a.tenant.id, action="adjusting_posting", payload={},
                                       proposed_by="user:1", created_at=timezone.now(),
                                       expires_at=timezone.now() + timedelta(hours=1))
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_approval SET status = 'approved', decided_by = proposed_by WHERE id = %s",
                       [approval.id])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_reconciliationbreak SET status = 'resolved' WHERE id = %s", [found.id])
    assert Approval.objects.get(pk=approval.id).status == "pending"
    assert ReconciliationBreak.objects.get(pk=found.pk).status == "open"
