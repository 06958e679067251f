"""Admin smoke per role: which pages each role of tenant A reaches, and what it may do there."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils.html import escape

from audit.models import AccessDenial, RequestRecord
from ledger.models import Account
from tenants.models import Membership
from tenants.selectors import tenants_for_user
from webhooks.models import Event

pytestmark = pytest.mark.django_db

PAGES = {
    "accounts": "admin:ledger_account_changelist",
    "events": "admin:webhooks_event_changelist",
    "memberships": "admin:tenants_membership_changelist",
    "api keys": "admin:tenants_apikey_changelist",
    "access denials": "admin:audit_accessdenial_changelist",
    "request records": "admin:audit_requestrecord_changelist",
    "tenants": "admin:tenants_tenant_changelist",
}

# What each role of the tenant may open (200); every other page answers 403.
ALLOWED = {
    "owner": set(PAGES),
    "operator": {"accounts", "events", "memberships", "tenants"},
    "viewer": {"accounts", "events", "memberships", "tenants"},
    "compliance": {"accounts", "events", "memberships", "tenants", "access denials", "request records"},
}

MATRIX = [(role, page) for role in ALLOWED for page in PAGES]


def customer_account(ctx) -> Account:
    """A non-system account of the tenant, created through its API (so it has an event and history)."""
    response = ctx.post("/v1/accounts", {"currency": "USD", "account_type": "customer", "customer": "cus_1"})
    assert response.status_code == 201, response.content
    return Account.objects.get(pk=response.json()["id"])


def action_choices(response) -> set[str]:
    form = response.context.get("action_form")
    if form is None:
        return set()
    return {value for value, _ in form.fields["action"].choices if value}


@pytest.mark.parametrize(("role", "page"), MATRIX, ids=[f"{r}-{p.replace(' ', '_')}" for r, p in MATRIX])
def test_each_role_reaches_exactly_the_pages_it_allows(client, tenant_a, role, page):
    # given
    user = tenant_a.member(role)
    client.force_login(user)
    # when
    response = client.get(reverse(PAGES[page]))
    # then
    expected = 200 if page in ALLOWED[role] else 403
    assert response.status_code == expected, response.content[:500]


@pytest.mark.parametrize("role", list(ALLOWED))
def test_admin_index_opens_and_lists_only_reachable_pages(client, tenant_a, role):
    # given
    client.force_login(tenant_a.member(role))
    # when
    response = client.get(reverse("admin:index"))
    # then
    assert response.status_code == 200
    content = response.content.decode()
    for page, url_name in PAGES.items():
        assert (reverse(url_name) in content) == (page in ALLOWED[role]), page


def test_refused_changelist_leaves_an_access_denial(client, tenant_a):
    # given
    operator = tenant_a.member("operator")
    client.force_login(operator)
    # when
    response = client.get(reverse("admin:tenants_apikey_changelist"))
    # then
    assert response.status_code == 403
    denial = AccessDenial.objects.get(action="admin:list tenants.apikey")
    assert denial.actor == f"user:{operator.pk}"
    assert denial.role == f"{tenant_a.tenant.slug}:operator"
    assert denial.request_id == response["X-Request-Id"]


def test_operators_are_staff_and_never_superusers(tenant_a):
    # given / when
    users = [tenant_a.member(role) for role in ALLOWED]
    # then
    for user in users:
        user.refresh_from_db()
        assert user.is_staff and not user.is_superuser, user.username


def test_membership_form_never_offers_superusers(client, tenant_a):
    # given
    get_user_model().objects.create_superuser("root-admin", password="x" * 12)
    candidate = tenant_a.member("viewer", username="candidate")
    Membership.objects.filter(user=candidate).delete()  # staff, in no tenant yet
    client.force_login(tenant_a.member("owner"))
    # when
    response = client.get(reverse("admin:tenants_membership_add"))
    # then
    assert response.status_code == 200
    offered = set(response.context["adminform"].form.fields["user"].queryset.values_list("username", flat=True))
    assert "candidate" in offered
    assert "root-admin" not in offered


@pytest.mark.parametrize("role", ["viewer", "compliance"])
def test_read_only_roles_see_the_account_without_a_save_button_and_cannot_post(client, tenant_a, role):
    # given
    account = customer_account(tenant_a)
    client.force_login(tenant_a.member(role))
    url = reverse("admin:ledger_account_change", args=[account.pk])
    # when
    page = client.get(url)
    posted = client.post(url, {"name": "renamed", "customer": "cus_other"})
    # then
    assert page.status_code == 200
    assert account.id in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403
    account.refresh_from_db()
    assert (account.name, account.customer) == ("", "cus_1")


@pytest.mark.parametrize("role", ["viewer", "compliance"])
def test_read_only_roles_cannot_add_accounts(client, tenant_a, role):
    # given
    client.force_login(tenant_a.member(role))
    before = Account.objects.count()
    # when
    page = client.get(reverse("admin:ledger_account_add"))
    posted = client.post(reverse("admin:ledger_account_add"), {
        "tenant": tenant_a.tenant.pk, "currency": "USD", "account_type": "customer", "normal_balance": "credit",
        "customer": "cus_x", "name": "", "metadata": "{}"})
    # then
    assert page.status_code == 403
    assert posted.status_code == 403
    assert Account.objects.count() == before


def test_operator_is_offered_the_freeze_action(client, tenant_a):
    # given
    customer_account(tenant_a)
    client.force_login(tenant_a.member("operator"))
    # when
    response = client.get(reverse("admin:ledger_account_changelist"))
    # then
    assert response.status_code == 200
    assert {"freeze", "unfreeze", "close"} <= action_choices(response)


@pytest.mark.parametrize("role", ["viewer", "compliance"])
def test_read_only_roles_are_not_offered_the_freeze_action_and_posting_it_changes_nothing(client, tenant_a, role):
    # given
    account = customer_account(tenant_a)
    client.force_login(tenant_a.member(role))
    url = reverse("admin:ledger_account_changelist")
    events_before = Event.objects.count()
    # when
    listing = client.get(url)
    client.post(url, {"action": "freeze", "_selected_action": [account.pk]})
    client.post(url, {"action": "freeze", "_selected_action": [account.pk], "confirm": "yes",
                      "reason": "trying anyway"})
    # then
    assert listing.status_code == 200
    assert action_choices(listing).isdisjoint({"freeze", "unfreeze", "close"})
    account.refresh_from_db()
    assert account.status == Account.ACTIVE
    assert Event.objects.count() == events_before
    assert not Event.objects.filter(type="account.frozen").exists()


def test_compliance_browses_account_history_and_its_versions(client, tenant_a):
    # given
    account = customer_account(tenant_a)
    version = account.history.first()
    client.force_login(tenant_a.member("compliance"))
    # when
    history = client.get(reverse("admin:ledger_account_history", args=[account.pk]))
    form = client.get(reverse("admin:ledger_account_simple_history", args=[account.pk, version.history_id]))
    # then
    assert history.status_code == 200
    assert list(history.context["page_obj"].object_list) == [version]
    # the actor of an API change is an API key, not a user: the page must still say who acted
    assert version.history_actor == f"api_key:{tenant_a.tenant.api_keys.get(name='bootstrap').id}"
    assert version.history_actor in history.content.decode()
    assert form.status_code == 200
    assert 'value="Revert"' not in form.content.decode()


def test_compliance_sees_the_denials_of_its_tenant(client, tenant_a, tenant_b):
    # given: an operator of B pokes at an account of A, leaving a denial on A
    account = customer_account(tenant_a)
    intruder = tenant_b.member("operator")
    client.force_login(intruder)
    assert client.get(reverse("admin:ledger_account_change", args=[account.pk])).status_code == 404
    denial = AccessDenial.objects.get(target=account.pk)
    # when
    client.force_login(tenant_a.member("compliance"))
    listing = client.get(reverse("admin:audit_accessdenial_changelist"))
    detail = client.get(reverse("admin:audit_accessdenial_change", args=[denial.pk]))
    # then
    assert listing.status_code == 200
    assert denial in listing.context["cl"].result_list
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()


def test_global_grants_never_open_a_tenant(client, tenant_a):
    # given: a staff user with model-level grants and no membership
    account = customer_account(tenant_a)
    user = get_user_model().objects.create_user("global-grant", password="x" * 12, is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="tenants", codename="view_tenant_data"),
        Permission.objects.get(content_type__app_label="ledger", codename="view_account"),
    )
    user = get_user_model().objects.get(pk=user.pk)
    assert user.has_perm("tenants.view_tenant_data") and user.has_perm("ledger.view_account")
    client.force_login(user)
    # when
    listing = client.get(reverse("admin:ledger_account_changelist"))
    detail = client.get(reverse("admin:ledger_account_change", args=[account.pk]))
    tenants = client.get(reverse("admin:tenants_tenant_changelist"))
    # then
    assert list(tenants_for_user(user)) == []
    assert not user.has_perm("tenants.view_tenant_data", tenant_a.tenant)
    assert listing.status_code == 403
    assert detail.status_code == 404
    assert tenants.status_code == 403
    assert AccessDenial.objects.filter(actor=f"user:{user.pk}", target=account.pk,
                                       target_tenant_id=tenant_a.tenant.pk).exists()


@pytest.mark.parametrize("role", ["owner", "compliance"])
def test_history_pages_of_immutable_rows_open_without_error(client, tenant_a, role):
    # given: events, denials and request records keep no history table, yet their pages link to one
    account = customer_account(tenant_a)
    event = Event.objects.get(resource_id=account.pk, type="account.created")
    denial = AccessDenial.objects.create(actor="user:0", action="admin:view ledger.account",
                                         target_tenant_id=tenant_a.tenant.pk)
    record = RequestRecord.objects.get(tenant_id=tenant_a.tenant.pk, path="/v1/accounts")
    client.force_login(tenant_a.member(role))
    for url_name, obj in [("admin:webhooks_event_history", event),
                          ("admin:audit_accessdenial_history", denial),
                          ("admin:audit_requestrecord_history", record)]:
        # when
        history = client.get(reverse(url_name, args=[obj.pk]))
        version = client.get(reverse(url_name.replace("_history", "_simple_history"), args=[obj.pk, 1]))
        # then
        assert history.status_code == 200, url_name
        assert escape(str(obj)) in history.content.decode()
        assert version.status_code == 404, url_name


@pytest.mark.parametrize("page", ["admin:auth_user_changelist", "admin:auth_group_changelist", "admin:auth_user_add"])
def test_users_and_groups_are_the_platform_superusers_alone(client, tenant_a, page):
    # given: the tenant's owner, the strongest tenant role
    owner = tenant_a.member("owner")
    client.force_login(owner)
    denials_before = AccessDenial.objects.count()
    # when / then: refused, with evidence, and not offered on the index
    assert client.get(reverse(page)).status_code == 403
    assert AccessDenial.objects.count() == denials_before + 1
    assert AccessDenial.objects.latest("id").actor == f"user:{owner.pk}"
    assert b"/admin/auth/" not in client.get(reverse("admin:index")).content
    # the platform superuser manages them
    superuser = get_user_model().objects.create_superuser("platform", password="pw-platform")
    client.force_login(superuser)
    assert client.get(reverse(page)).status_code == 200
