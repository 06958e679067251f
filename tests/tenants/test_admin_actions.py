"""Admin actions and forms that write: each goes through the service and leaves its evidence."""

import hashlib

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import ERROR, SUCCESS
from django.urls import reverse
from guardian.models import UserObjectPermission

from audit.models import AccessDenial
from ledger.models import Account
from tenants.models import ApiKey, Membership
from tests.conftest import api_client
from webhooks.models import Event

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:ledger_account_changelist"


def customer_account(ctx) -> Account:
    response = ctx.post("/v1/accounts", {"currency": "USD", "account_type": "customer", "customer": "cus_1"})
    assert response.status_code == 201, response.content
    return Account.objects.get(pk=response.json()["id"])


def messages_of(response) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in response.context["messages"]]


def fresh(user):
    """A new instance, so no permission cache of an earlier check answers."""
    return get_user_model().objects.get(pk=user.pk)


# --- freeze ----------------------------------------------------------------------------------

def test_freeze_asks_for_confirmation_before_changing_anything(client, tenant_a):
    # given
    account = customer_account(tenant_a)
    client.force_login(tenant_a.member("operator"))
    history_before = account.history.count()
    # when
    response = client.post(reverse(CHANGELIST), {"action": "freeze", "_selected_action": [account.pk]})
    # then
    assert response.status_code == 200
    assert response.templates[0].name == "admin/zentra/confirm_action.html"
    assert response.context["objects"] == [account]
    assert 'name="reason"' in response.content.decode()
    account.refresh_from_db()
    assert account.status == Account.ACTIVE
    assert account.history.count() == history_before
    assert not Event.objects.filter(type="account.frozen").exists()


def test_confirm_without_a_reason_changes_nothing(client, tenant_a):
    # given
    account = customer_account(tenant_a)
    client.force_login(tenant_a.member("operator"))
    # when
    response = client.post(reverse(CHANGELIST), {"action": "freeze", "_selected_action": [account.pk],
                                                 "confirm": "yes", "reason": ""})
    # then
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    account.refresh_from_db()
    assert account.status == Account.ACTIVE
    assert not Event.objects.filter(type="account.frozen").exists()


def test_freeze_with_a_reason_freezes_through_the_service_and_leaves_evidence(client, tenant_a):
    # given
    account = customer_account(tenant_a)
    operator = tenant_a.member("operator")
    client.force_login(operator)
    # when
    response = client.post(reverse(CHANGELIST), {"action": "freeze", "_selected_action": [account.pk],
                                                 "confirm": "yes", "reason": "chargeback investigation #42"},
                           follow=True)
    # then
    assert response.status_code == 200
    assert (SUCCESS, "Freeze: 1 done.") in messages_of(response)
    account.refresh_from_db()
    assert account.status == Account.FROZEN
    event = Event.objects.get(type="account.frozen", resource_id=account.pk)
    assert event.tenant_id == tenant_a.tenant.pk
    assert event.actor == f"user:{operator.pk}"
    assert event.data["object"]["status"] == "frozen"
    latest = account.history.first()
    assert latest.status == Account.FROZEN
    assert latest.history_user_id == operator.pk
    assert latest.history_actor == f"user:{operator.pk}"
    assert latest.history_change_reason == "chargeback investigation #42"


def test_freezing_a_frozen_account_reports_an_error_and_changes_nothing(client, tenant_a):
    # given
    account = customer_account(tenant_a)
    client.force_login(tenant_a.member("operator"))
    body = {"action": "freeze", "_selected_action": [account.pk], "confirm": "yes", "reason": "first"}
    client.post(reverse(CHANGELIST), body, follow=True)  # reads its success message
    history_before = account.history.count()
    events_before = Event.objects.count()
    # when
    response = client.post(reverse(CHANGELIST), {**body, "reason": "second"}, follow=True)
    # then
    errors = [text for level, text in messages_of(response) if level == ERROR]
    assert len(errors) == 1 and "invalid_state_transition" in errors[0] and account.pk in errors[0]
    assert not any(level == SUCCESS for level, _ in messages_of(response))
    account.refresh_from_db()
    assert account.status == Account.FROZEN
    assert account.history.count() == history_before
    assert account.history.first().history_change_reason == "first"
    assert Event.objects.count() == events_before


def test_unfreeze_reverts_the_status_with_its_own_event(client, tenant_a):
    # given
    account = customer_account(tenant_a)
    client.force_login(tenant_a.member("operator"))
    client.post(reverse(CHANGELIST), {"action": "freeze", "_selected_action": [account.pk], "confirm": "yes",
                                      "reason": "check"})
    # when
    client.post(reverse(CHANGELIST), {"action": "unfreeze", "_selected_action": [account.pk], "confirm": "yes",
                                      "reason": "cleared"})
    # then
    account.refresh_from_db()
    assert account.status == Account.ACTIVE
    assert list(Event.objects.filter(resource_id=account.pk).order_by("id").values_list("type", flat=True)) == [
        "account.created", "account.frozen", "account.unfrozen"]
    assert account.history.first().history_change_reason == "cleared"


def test_freeze_refuses_accounts_where_the_role_is_read_only(client, tenant_a, tenant_b):
    # given: one login, operator of B and viewer of A, selects an account of each
    tenant_b.member("operator", username="mixed")
    user = tenant_a.member("viewer", username="mixed")  # the same login (with its latest password)
    own, read_only = customer_account(tenant_b), customer_account(tenant_a)
    client.force_login(user)
    # when
    response = client.post(reverse(CHANGELIST), {"action": "freeze", "_selected_action": [own.pk, read_only.pk],
                                                 "confirm": "yes", "reason": "mixed batch"}, follow=True)
    # then
    own.refresh_from_db()
    read_only.refresh_from_db()
    assert (own.status, read_only.status) == (Account.FROZEN, Account.ACTIVE)
    assert list(Event.objects.filter(type="account.frozen").values_list("resource_id", flat=True)) == [own.pk]
    denial = AccessDenial.objects.get(actor=f"user:{user.pk}")
    assert (denial.action, denial.target, denial.target_tenant_id) == (
        "admin:freeze ledger.account", read_only.pk, tenant_a.tenant.pk)
    assert any(level == ERROR and read_only.pk in text for level, text in messages_of(response))


def test_operator_adds_an_account_through_the_service(client, tenant_a):
    # given
    operator = tenant_a.member("operator")
    client.force_login(operator)
    # when
    response = client.post(reverse("admin:ledger_account_add"), {
        "tenant": tenant_a.tenant.pk, "currency": "EUR", "account_type": "customer", "normal_balance": "credit",
        "customer": "cus_admin", "name": "Added in admin", "metadata": "{}"})
    # then
    assert response.status_code == 302, response.content[:500]
    account = Account.objects.get(customer="cus_admin")
    assert (account.tenant_id, account.currency, account.status) == (tenant_a.tenant.pk, "EUR", Account.ACTIVE)
    event = Event.objects.get(type="account.created", resource_id=account.pk)
    assert event.actor == f"user:{operator.pk}"
    assert account.history.get().history_user_id == operator.pk


@pytest.mark.parametrize("currency", ["XYZ", "usd"])
def test_account_add_with_a_bad_currency_is_refused_and_creates_nothing(client, tenant_a, currency):
    # given
    client.force_login(tenant_a.member("operator"))
    before = (Account.objects.count(), Event.objects.count())
    # when
    response = client.post(reverse("admin:ledger_account_add"), {
        "tenant": tenant_a.tenant.pk, "currency": currency, "account_type": "customer",
        "normal_balance": "credit", "customer": "cus_bad", "name": "", "metadata": "{}"}, follow=True)
    # then: either the form or the service refuses it, with a word about the currency
    assert response.status_code == 200
    form = response.context.get("adminform")
    said = " ".join(text for _, text in messages_of(response))
    said += " ".join(str(e) for e in form.form.errors.values()) if form is not None else ""
    assert "currency" in said.lower()
    assert (Account.objects.count(), Event.objects.count()) == before
    assert not Account.objects.filter(customer="cus_bad").exists()


# --- API keys --------------------------------------------------------------------------------

def test_created_api_key_is_shown_once_works_and_only_its_hash_is_stored(client, tenant_a):
    # given
    owner = tenant_a.member("owner")
    client.force_login(owner)
    # when
    response = client.post(reverse("admin:tenants_apikey_add"),
                           {"tenant": tenant_a.tenant.pk, "name": "ops script", "scope": "read"})
    # then: the page shows the raw key, not to be cached
    assert response.status_code == 200
    raw = response.context["raw_key"]
    assert raw.startswith("zk_") and raw in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    api_key = ApiKey.objects.get(name="ops script")
    assert (api_key.tenant_id, api_key.scope, api_key.created_by) == (tenant_a.tenant.pk, "read", f"user:{owner.pk}")
    assert api_key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(list(ApiKey.objects.filter(pk=api_key.pk).values().get().values()))
    assert api_key.history.get().history_user_id == owner.pk
    # and: it authenticates against the API, scoped to its tenant
    listing = api_client(raw).get("/v1/accounts")
    assert listing.status_code == 200
    # and: the key is never shown again
    change_page = client.get(reverse("admin:tenants_apikey_change", args=[api_key.pk]))
    assert change_page.status_code == 200
    assert raw not in change_page.content.decode()
    assert f"zk_{api_key.prefix}_" in change_page.content.decode()


def test_revoke_action_makes_the_key_answer_401(client, tenant_a):
    # given
    owner = tenant_a.member("owner")
    client.force_login(owner)
    created = client.post(reverse("admin:tenants_apikey_add"),
                          {"tenant": tenant_a.tenant.pk, "name": "to revoke", "scope": "write"})
    raw = created.context["raw_key"]
    api_key = ApiKey.objects.get(name="to revoke")
    assert api_client(raw).get("/v1/accounts").status_code == 200
    # when: the owner asks (a confirmation page, nothing revoked yet), then confirms with a reason
    selected = {"action": "revoke", "_selected_action": [api_key.pk]}
    asked = client.post(reverse("admin:tenants_apikey_changelist"), selected)
    assert asked.status_code == 200 and b"Yes, revoke" in asked.content
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is None
    response = client.post(reverse("admin:tenants_apikey_changelist"),
                           {**selected, "confirm": "yes", "reason": "leaked in a CI log"}, follow=True)
    # then
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    latest = api_key.history.first()
    assert (latest.history_user_id, latest.history_change_reason) == (owner.pk, "revoked: leaked in a CI log")
    refused = api_client(raw).get("/v1/accounts")
    assert refused.status_code == 401
    # the bootstrap key of the tenant still works: only the selected key was revoked
    assert tenant_a.get("/v1/accounts").status_code == 200


def test_api_key_add_form_refuses_another_tenant(client, tenant_a, tenant_b):
    # given
    client.force_login(tenant_a.member("owner"))
    before = ApiKey.objects.count()
    # when
    response = client.post(reverse("admin:tenants_apikey_add"),
                           {"tenant": tenant_b.tenant.pk, "name": "smuggled", "scope": "write"})
    # then
    assert response.status_code == 200
    assert "tenant" in response.context["adminform"].form.errors
    assert "raw_key" not in response.context
    assert ApiKey.objects.count() == before


# --- memberships -----------------------------------------------------------------------------

@pytest.fixture
def newcomer(tenant_a):
    """A staff login in no tenant yet (the membership form offers such users)."""
    user = tenant_a.member("viewer", username="newcomer")
    Membership.objects.filter(user=user).delete()
    UserObjectPermission.objects.filter(user=user).delete()
    assert not fresh(user).has_perm("tenants.view_tenant_data", tenant_a.tenant)
    return user


def test_membership_add_change_delete_keep_guardian_perms_in_step(client, tenant_a, newcomer):
    # given
    owner = tenant_a.member("owner")
    client.force_login(owner)
    tenant = tenant_a.tenant

    # when: added as viewer
    added = client.post(reverse("admin:tenants_membership_add"),
                        {"tenant": tenant.pk, "user": newcomer.pk, "role": "viewer"})
    # then
    assert added.status_code == 302, added.content[:500]
    membership = Membership.objects.get(tenant=tenant, user=newcomer)
    assert membership.role == "viewer"
    user = fresh(newcomer)
    assert user.has_perm("tenants.view_tenant_data", tenant)
    assert not user.has_perm("tenants.operate_tenant", tenant)
    assert not user.has_perm("tenants.manage_tenant", tenant)
    assert not user.has_perm("tenants.view_tenant_evidence", tenant)
    assert membership.history.first().history_user_id == owner.pk

    # when: the role changes to compliance
    changed = client.post(reverse("admin:tenants_membership_change", args=[membership.pk]), {"role": "compliance"})
    # then
    assert changed.status_code == 302, changed.content[:500]
    membership.refresh_from_db()
    assert membership.role == "compliance"
    user = fresh(newcomer)
    assert user.has_perm("tenants.view_tenant_data", tenant)
    assert user.has_perm("tenants.view_tenant_evidence", tenant)
    assert not user.has_perm("tenants.operate_tenant", tenant)

    # when: the membership is deleted
    deleted = client.post(reverse("admin:tenants_membership_delete", args=[membership.pk]), {"post": "yes"})
    # then
    assert deleted.status_code == 302, deleted.content[:500]
    assert not Membership.objects.filter(pk=membership.pk).exists()
    user = fresh(newcomer)
    for perm in ("view_tenant_data", "operate_tenant", "manage_tenant", "view_tenant_evidence"):
        assert not user.has_perm(f"tenants.{perm}", tenant), perm
    assert membership.history.first().history_type == "-"
    assert membership.history.first().history_user_id == owner.pk


def test_membership_bulk_delete_is_not_offered_and_posting_it_deletes_nothing(client, tenant_a):
    # given: the stock bulk delete would bypass the service that removes the grants
    viewer = tenant_a.member("viewer")
    client.force_login(tenant_a.member("owner"))
    url = reverse("admin:tenants_membership_changelist")
    membership = Membership.objects.get(user=viewer)
    # when
    listing = client.get(url)
    client.post(url, {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"})
    # then
    form = listing.context.get("action_form")
    choices = {value for value, _ in form.fields["action"].choices} if form is not None else set()
    assert "delete_selected" not in choices
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert fresh(viewer).has_perm("tenants.view_tenant_data", tenant_a.tenant)


def test_operator_cannot_manage_memberships(client, tenant_a, newcomer):
    # given
    client.force_login(tenant_a.member("operator"))
    # when
    response = client.post(reverse("admin:tenants_membership_add"),
                           {"tenant": tenant_a.tenant.pk, "user": newcomer.pk, "role": "owner"})
    # then
    assert response.status_code == 403
    assert not Membership.objects.filter(user=newcomer).exists()
    assert not fresh(newcomer).has_perm("tenants.manage_tenant", tenant_a.tenant)


def test_renaming_a_tenant_asks_why_and_goes_through_the_service(client, tenant_a):
    # given
    owner = tenant_a.member("owner")
    client.force_login(owner)
    url = reverse("admin:tenants_tenant_change", args=[tenant_a.tenant.pk])
    # when: no reason, then a reason
    refused = client.post(url, {"name": "Alpha Payments Ltd"})
    saved = client.post(url, {"name": "Alpha Payments Ltd", "reason": "legal name after incorporation"})
    # then
    assert refused.status_code == 200 and "reason" in refused.context["adminform"].form.errors
    assert saved.status_code == 302
    tenant_a.tenant.refresh_from_db()
    latest = tenant_a.tenant.history.first()
    assert tenant_a.tenant.name == "Alpha Payments Ltd"
    assert (latest.history_user_id, latest.history_change_reason) == (owner.pk, "legal name after incorporation")
