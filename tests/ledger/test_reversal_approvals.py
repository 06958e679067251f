"""Reversals above the tenant's threshold wait for a second person (tenants/approval_rules.py):
an operator's in the admin by default, an API key's when the tenant asks keys for it too. The
approved reversal runs through the reversal service, as the approval that names both people."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import Approval
from ledger.models import LedgerTransaction

from .checks import customer_account, external_account, ledger_snapshot, transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def postings(tenant_a, settings):
    """Two postings of tenant A: 150,000 (above the default threshold) and 20,000 (below it)."""
    settings.ZENTRA_APPROVAL_REVERSAL_ABOVE = 100_000
    bank, alice = external_account(tenant_a.tenant), customer_account(tenant_a.tenant)
    return transfer(tenant_a.tenant, bank, alice, 150_000), transfer(tenant_a.tenant, bank, alice, 20_000)


def reverse_in_admin(client, transaction, reason="customer asked"):
    return client.post(reverse("admin:ledger_ledgertransaction_changelist"), {
        "action": "reverse", "_selected_action": [transaction.pk], "confirm": "1", "reason": reason}, follow=True)


def approve_in_admin(client, approval, reason="checked the request"):
    return client.post(reverse("admin:audit_approval_changelist"), {
        "action": "approve", "_selected_action": [approval.pk], "confirm": "1", "reason": reason}, follow=True)


def test_an_operators_large_reversal_waits_for_a_second_operator(client, tenant_a, postings):
    # given
    large, small = postings
    maker, checker = tenant_a.member("operator"), tenant_a.member("operator", username="checker")
    client.force_login(maker)
    # when
    proposed = reverse_in_admin(client, large)
    done = reverse_in_admin(client, small)
    # then: the small one is reversed at once, the large one is a proposal and nothing moved
    assert "Proposed, waiting for a second person" in proposed.content.decode()
    assert LedgerTransaction.objects.filter(reverses=small).exists()
    assert "1 done" in done.content.decode()
    assert not LedgerTransaction.objects.filter(reverses=large).exists()
    approval = Approval.objects.get(action="transaction_reversal", target=large.id)
    assert approval.status == "pending" and approval.proposed_by == f"user:{maker.pk}"
    # when: the maker tries to approve it, then the checker does
    approve_in_admin(client, approval)
    assert Approval.objects.get(pk=approval.pk).status == "pending"
    client.force_login(checker)
    approve_in_admin(client, approval)
    # then: reversed once, by the approval, which names both operators
    approval.refresh_from_db()
    reversal = LedgerTransaction.objects.get(reverses=large)
    assert approval.status == "approved" and approval.result == reversal.id
    assert reversal.actor == f"approval:{approval.pk}"
    assert approval.decided_by == f"user:{checker.pk}"


def test_an_api_key_reverses_directly_unless_the_tenant_asks_keys_for_approvals(tenant_a, postings):
    # given
    large, _ = postings
    # when: the default, API keys act directly
    direct = tenant_a.post(f"/v1/transactions/{large.id}/reverse", {"reason": "duplicate"})
    # then
    assert direct.status_code == 201, direct.content
    assert direct.json()["reverses"] == large.id


def test_a_reversal_proposed_through_the_api_answers_202_and_a_second_key_runs_it(tenant_a, postings):
    # given
    large, _ = postings
    tenant_a.tenant.approvals_for_api_keys = True
    tenant_a.tenant.save(update_fields=["approvals_for_api_keys"])
    before = ledger_snapshot([tenant_a.tenant.id])
    # when
    proposed = tenant_a.post(f"/v1/transactions/{large.id}/reverse", {"reason": "duplicate"})
    # then: the approval, and the ledger untouched
    assert proposed.status_code == 202, proposed.content
    body = proposed.json()
    assert body["object"] == "approval" and body["action"] == "transaction_reversal" and body["status"] == "pending"
    assert body["payload"] == {"transaction": large.id, "reason": "duplicate"}
    assert ledger_snapshot([tenant_a.tenant.id]) == before
    shown = tenant_a.get(f"/v1/approvals/{body['id']}")
    assert shown.status_code == 200 and shown.json() == body
    # and a second proposal for the same posting is refused while the first waits
    again = tenant_a.post(f"/v1/transactions/{large.id}/reverse", {"reason": "duplicate"})
    assert again.status_code == 409 and again.json()["code"] == "invalid_state_transition"
    # when: a second key approves
    decided = tenant_a.checker_client().post(f"/v1/approvals/{body['id']}/approve", {"reason": "ok"},
                                             format="json", HTTP_IDEMPOTENCY_KEY="approve-1")
    # then
    assert decided.status_code == 200, decided.content
    reversal = LedgerTransaction.objects.get(reverses=large)
    assert decided.json()["result"] == reversal.id


def test_an_already_reversed_posting_is_refused_instead_of_proposed(tenant_a, postings):
    # given
    large, _ = postings
    tenant_a.post(f"/v1/transactions/{large.id}/reverse", {"reason": "first"})
    tenant_a.tenant.approvals_for_api_keys = True
    tenant_a.tenant.save(update_fields=["approvals_for_api_keys"])
    # when
    refused = tenant_a.post(f"/v1/transactions/{large.id}/reverse", {"reason": "again"})
    # then: no approval for nothing
    assert refused.status_code == 409 and refused.json()["code"] == "already_reversed"
    assert not Approval.objects.exists()
