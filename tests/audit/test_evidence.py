"""Evidence survives rollbacks, names its actor, and history cannot be used to rewrite the present."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from audit.actors import Actor
from audit.models import AccessDenial, RequestRecord
from audit.services.evidence import access_denial_record, request_record_write
from ledger.models import Account
from tenants.models import Membership, Tenant
from tenants.services.tenants import tenant_create

pytestmark = pytest.mark.django_db


class Refused(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_access_denial_survives_the_rollback_of_its_request():
    # given / when: a unit of work writes a change and a denial, then fails
    with pytest.raises(Refused):
        with transaction.atomic():
            tenant_create(slug="rolled-back", name="Rolled back", actor=Actor.system("tests"))
            access_denial_record(actor=Actor.system("tests"), action="POST /v1/accounts", target="acct_x",
                                 tenant_id="tnt_x", reason="refused mid-transaction", request_id="req_rollback")
            raise Refused
    # then: the change is gone, the evidence of the refusal is not
    assert not Tenant.objects.filter(slug="rolled-back").exists()
    denial = AccessDenial.objects.get(request_id="req_rollback")
    assert (denial.actor, denial.action, denial.target, denial.reason) == (
        "system:tests", "POST /v1/accounts", "acct_x", "refused mid-transaction")


@pytest.mark.django_db(transaction=True)
def test_request_record_survives_the_rollback_of_its_request():
    # when
    with pytest.raises(Refused):
        with transaction.atomic():
            request_record_write(request_id="req_rec_rollback", tenant_id="tnt_x", actor="api_key:key_x",
                                 method="POST", path="/v1/accounts", status=500, idempotency_key="k1",
                                 idempotent_replay=False, duration_ms=3)
            raise Refused
    # then
    record = RequestRecord.objects.get(request_id="req_rec_rollback")
    assert (record.status, record.idempotency_key) == (500, "k1")


@pytest.mark.django_db(transaction=True)
def test_admin_denial_survives_the_rolled_back_change_form_transaction(client, tenant_a, tenant_b):
    # given: the admin runs a change form inside transaction.atomic(); the 404 unwinds it
    membership = Membership.objects.get(user=tenant_a.member("viewer"), tenant=tenant_a.tenant)
    intruder = tenant_b.member("operator")
    client.force_login(intruder)
    # when
    response = client.post(reverse("admin:tenants_membership_change", args=[membership.pk]), {"role": "owner"})
    # then
    assert response.status_code == 404
    membership.refresh_from_db()
    assert membership.role == "viewer"
    denial = AccessDenial.objects.get(actor=f"user:{intruder.pk}")
    assert (denial.target, denial.target_tenant_id) == (str(membership.pk), tenant_a.tenant.pk)


def test_evidence_models_are_routed_to_the_evidence_connection():
    # when
    denial = access_denial_record(actor="user:1", action="admin:view x")
    # then: a write on `default` would roll back with the refused request
    assert denial._state.db == "evidence"
    assert AccessDenial.objects.all().db == "evidence"
    assert Account.objects.all().db == "default"


def test_history_names_the_api_key_that_acted(tenant_a):
    # given
    api_key = tenant_a.tenant.api_keys.get(name="bootstrap")
    # when
    created = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "customer", "customer": "c"})
    account_id = created.json()["id"]
    frozen = tenant_a.post(f"/v1/accounts/{account_id}/freeze", {"reason": "api freeze"})
    # then
    assert created.status_code == 201
    assert frozen.status_code == 200, frozen.content
    rows = list(Account.objects.get(pk=account_id).history.order_by("history_date"))
    assert [row.history_type for row in rows] == ["+", "~"]
    assert [row.history_actor for row in rows] == [f"api_key:{api_key.id}"] * 2
    assert [row.history_user_id for row in rows] == [None, None]
    assert rows[1].status == Account.FROZEN


def test_history_names_the_system_job_that_acted(tenant_a):
    # then: the bootstrap ran as the tests' system actor
    assert tenant_a.tenant.history.get().history_actor == "system:tests"
    assert tenant_a.tenant.history.get().history_user_id is None
    assert {row.history_actor for row in Account.history.filter(tenant_id=tenant_a.tenant.pk)} == {"system:tests"}


def test_history_names_the_admin_user_that_acted(client, tenant_a):
    # given
    owner = tenant_a.member("owner")
    viewer = tenant_a.member("viewer")
    membership = Membership.objects.get(user=viewer, tenant=tenant_a.tenant)
    client.force_login(owner)
    # when
    response = client.post(reverse("admin:tenants_membership_change", args=[membership.pk]), {"role": "operator"})
    # then
    assert response.status_code == 302
    latest = membership.history.first()
    assert (latest.role, latest.history_type) == ("operator", "~")
    assert latest.history_user_id == owner.pk
    assert latest.history_actor == f"user:{owner.pk}"


def test_history_revert_is_disabled_in_settings_and_on_the_page(client, tenant_a):
    # given: an owner, who may change memberships, opens an old version of one
    assert settings.SIMPLE_HISTORY_REVERT_DISABLED is True
    owner = tenant_a.member("owner")
    membership = Membership.objects.get(user=tenant_a.member("viewer"), tenant=tenant_a.tenant)
    client.force_login(owner)
    client.post(reverse("admin:tenants_membership_change", args=[membership.pk]), {"role": "operator"})
    first = membership.history.last()
    assert first.role == "viewer"
    # when
    page = client.get(reverse("admin:tenants_membership_simple_history", args=[membership.pk, first.history_id]))
    # then
    assert page.status_code == 200
    content = page.content.decode()
    assert 'value="Revert"' not in content
    assert "Press the 'Revert' button" not in content
    assert page.context["revert_disabled"] is True


@pytest.mark.parametrize("role", ["owner", "viewer"])
def test_posting_to_a_history_version_reverts_nothing(client, tenant_a, role):
    # given: the viewer's membership went viewer -> operator -> viewer
    actor = tenant_a.member(role, username=f"actor-{role}")
    target_user = tenant_a.member("viewer", username="target")
    membership = Membership.objects.get(user=target_user, tenant=tenant_a.tenant)
    owner = tenant_a.member("owner")
    client.force_login(owner)
    client.post(reverse("admin:tenants_membership_change", args=[membership.pk]), {"role": "owner"})
    client.post(reverse("admin:tenants_membership_change", args=[membership.pk]), {"role": "viewer"})
    owner_version = membership.history.filter(role="owner").get()
    rows_before = membership.history.count()
    client.force_login(actor)
    # when: someone posts the old version's form, hoping it is saved
    response = client.post(
        reverse("admin:tenants_membership_simple_history", args=[membership.pk, owner_version.history_id]),
        {"role": "owner"})
    # then
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == "viewer"
    assert membership.history.count() == rows_before
    assert not get_user_model().objects.get(pk=target_user.pk).has_perm("tenants.manage_tenant", tenant_a.tenant)
    assert AccessDenial.objects.filter(actor=f"user:{actor.pk}", target=str(membership.pk)).exists()


def test_viewer_cannot_create_an_account_through_a_history_version(client, tenant_a):
    # given
    created = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "customer", "customer": "c"})
    account = Account.objects.get(pk=created.json()["id"])
    version = account.history.first()
    client.force_login(tenant_a.member("viewer"))
    before = Account.objects.count()
    # when
    response = client.post(reverse("admin:ledger_account_simple_history", args=[account.pk, version.history_id]), {})
    # then
    assert response.status_code == 403
    assert Account.objects.count() == before
