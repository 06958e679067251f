"""No refusal without evidence: every refused admin request leaves exactly one AccessDenial that
names the user's tenant(s) and role, visible to those tenants' compliance reviewers, and is
answered inside the admin's frame."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AccessDenial
from ledger.models import Account
from tests.ledger.checks import customer_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(tenant_a):
    return customer_account(tenant_a.tenant)


def only_new_denial(before: int) -> AccessDenial:
    assert AccessDenial.objects.count() == before + 1
    return AccessDenial.objects.latest("id")


def test_a_viewer_opening_an_operator_page_is_refused_in_the_admin_frame_with_evidence(client, tenant_a):
    viewer = tenant_a.member("viewer")
    client.force_login(viewer)
    before = AccessDenial.objects.count()
    # when: the add page needs the operator role
    response = client.get(reverse("admin:ledger_account_add"))
    # then
    assert response.status_code == 403
    html = response.content.decode()
    assert "Not allowed for your role" in html and reverse("admin:index") in html and "trace-search" in html
    denial = only_new_denial(before)
    assert denial.actor == f"user:{viewer.pk}" and denial.role == f"{tenant_a.tenant.slug}:viewer"
    assert denial.tenant_id == tenant_a.tenant.id and denial.actor_tenant_ids == [tenant_a.tenant.id]


def test_a_forged_freeze_is_refused_with_one_denial_that_compliance_finds(client, tenant_a, account):
    client.force_login(tenant_a.member("viewer"))
    before = AccessDenial.objects.count()
    # when: a viewer posts the operator's action by hand
    response = client.post(reverse("admin:ledger_account_changelist"),
                           {"action": "freeze", "_selected_action": [account.pk], "confirm": "yes",
                            "reason": "forged"})
    # then
    assert response.status_code == 403
    assert Account.objects.get(pk=account.pk).status == "active"
    denial = only_new_denial(before)
    assert denial.action == "admin:freeze ledger.account" and denial.target == account.pk
    # and the tenant's compliance reviewer sees it in the evidence list
    client.force_login(tenant_a.member("compliance"))
    listed = client.get(reverse("admin:audit_accessdenial_changelist"))
    assert denial in listed.context["cl"].result_list


def test_a_form_post_above_the_role_and_another_tenants_object_each_leave_one_denial(client, tenant_a, tenant_b,
                                                                                      account):
    client.force_login(tenant_a.member("viewer"))
    before = AccessDenial.objects.count()
    change = client.post(reverse("admin:tenants_tenant_change", args=[tenant_a.tenant.pk]),
                         {"name": "renamed by a viewer", "reason": "forged"})
    assert change.status_code == 403
    only_new_denial(before)
    client.force_login(tenant_b.member("operator"))
    before = AccessDenial.objects.count()
    foreign = client.get(reverse("admin:ledger_account_change", args=[account.pk]))
    assert foreign.status_code == 404 and b"Not found" in foreign.content
    denial = only_new_denial(before)
    assert (denial.target_tenant_id, denial.actor_tenant_ids) == (tenant_a.tenant.id, [tenant_b.tenant.id])
