"""An operator of tenant B on tenant A's objects: 404 like a missing object, and evidence of the attempt."""

import pytest
from django.urls import reverse

from audit.models import AccessDenial
from ledger.models import Account
from tenants.models import Membership
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def customer_account(ctx, customer="cus_1") -> Account:
    response = ctx.post("/v1/accounts", {"currency": "USD", "account_type": "customer", "customer": customer})
    assert response.status_code == 201, response.content
    return Account.objects.get(pk=response.json()["id"])


@pytest.fixture
def b_operator(client, tenant_b):
    user = tenant_b.member("operator")
    client.force_login(user)
    return user


def a_objects(tenant_a):
    account = customer_account(tenant_a)
    event = Event.objects.get(resource_id=account.pk, type="account.created")
    membership = Membership.objects.get(user=tenant_a.member("viewer"), tenant=tenant_a.tenant)
    return account, event, membership


PAGES = [
    ("account change", "admin:ledger_account_change", "account", "ledger.account"),
    ("account history", "admin:ledger_account_history", "account", "ledger.account"),
    ("event change", "admin:webhooks_event_change", "event", "webhooks.event"),
    ("event history", "admin:webhooks_event_history", "event", "webhooks.event"),
    ("membership change", "admin:tenants_membership_change", "membership", "tenants.membership"),
    ("membership history", "admin:tenants_membership_history", "membership", "tenants.membership"),
    ("membership delete", "admin:tenants_membership_delete", "membership", "tenants.membership"),
    ("tenant change", "admin:tenants_tenant_change", "tenant", "tenants.tenant"),
    ("api key change", "admin:tenants_apikey_change", "api_key", "tenants.apikey"),
]


@pytest.mark.parametrize(("label", "url_name", "kind", "model"), PAGES, ids=[p[0].replace(" ", "_") for p in PAGES])
def test_object_page_of_another_tenant_is_404_and_leaves_a_denial(client, tenant_a, b_operator, label, url_name,
                                                                    kind, model):
    # given
    account, event, membership = a_objects(tenant_a)
    target = {"account": account, "event": event, "membership": membership, "tenant": tenant_a.tenant,
              "api_key": tenant_a.tenant.api_keys.get()}[kind]
    # when
    response = client.get(reverse(url_name, args=[target.pk]))
    # then
    assert response.status_code == 404
    denial = AccessDenial.objects.get(actor=f"user:{b_operator.pk}")
    assert denial.action == f"admin:view {model}"
    assert denial.target == str(target.pk)
    assert denial.target_tenant_id == tenant_a.tenant.pk
    assert denial.role == f"{b_operator.memberships.get().tenant.slug}:operator"
    assert denial.request_id == response["X-Request-Id"]


def test_history_version_page_of_another_tenant_is_404_and_leaves_a_denial(client, tenant_a, b_operator):
    # given
    account, _, _ = a_objects(tenant_a)
    version = account.history.first()
    # when
    response = client.get(reverse("admin:ledger_account_simple_history", args=[account.pk, version.history_id]))
    # then
    assert response.status_code == 404
    assert AccessDenial.objects.filter(actor=f"user:{b_operator.pk}", action="admin:view ledger.account",
                                       target=account.pk, target_tenant_id=tenant_a.tenant.pk).count() == 1


def test_posting_to_an_object_of_another_tenant_changes_nothing(client, tenant_a, b_operator):
    # given
    _, _, membership = a_objects(tenant_a)
    # when
    changed = client.post(reverse("admin:tenants_membership_change", args=[membership.pk]), {"role": "owner"})
    deleted = client.post(reverse("admin:tenants_membership_delete", args=[membership.pk]), {"post": "yes"})
    # then
    assert (changed.status_code, deleted.status_code) == (404, 404)
    membership.refresh_from_db()
    assert membership.role == "viewer"
    assert AccessDenial.objects.filter(actor=f"user:{b_operator.pk}", target=str(membership.pk)).count() == 2


def test_missing_object_is_a_plain_404_without_a_denial(client, b_operator):
    # when
    account = client.get(reverse("admin:ledger_account_change", args=["acct_doesnotexist"]))
    history = client.get(reverse("admin:ledger_account_history", args=["acct_doesnotexist"]))
    membership = client.get(reverse("admin:tenants_membership_change", args=[987654321]))
    # then
    assert (account.status_code, history.status_code, membership.status_code) == (404, 404, 404)
    assert not AccessDenial.objects.exists()


def test_accounts_changelist_lists_own_accounts_only(client, tenant_a, tenant_b, b_operator):
    # given
    mine = customer_account(tenant_b, "cus_b")
    theirs = customer_account(tenant_a, "cus_a")
    # when
    response = client.get(reverse("admin:ledger_account_changelist"))
    # then
    assert response.status_code == 200
    listed = {account.pk for account in response.context["cl"].result_list}
    assert listed == set(Account.objects.filter(tenant=tenant_b.tenant).values_list("pk", flat=True))
    assert mine.pk in listed and theirs.pk not in listed
    assert not any(Account.objects.get(pk=pk).tenant_id == tenant_a.tenant.pk for pk in listed)
    assert theirs.pk not in response.content.decode()


def test_events_changelist_lists_own_events_only(client, tenant_a, tenant_b, b_operator):
    # given
    customer_account(tenant_b, "cus_b")
    customer_account(tenant_a, "cus_a")
    # when
    response = client.get(reverse("admin:webhooks_event_changelist"))
    # then
    assert response.status_code == 200
    tenants = {event.tenant_id for event in response.context["cl"].result_list}
    assert tenants == {tenant_b.tenant.pk}


@pytest.mark.parametrize("url_name", ["admin:ledger_account_changelist", "admin:webhooks_event_changelist",
                                      "admin:tenants_membership_changelist"])
def test_tenant_filter_of_another_tenant_is_404_and_leaves_a_denial(client, tenant_a, b_operator, url_name):
    # given
    customer_account(tenant_a)
    # when
    response = client.get(reverse(url_name), {"tenant": tenant_a.tenant.pk})
    # then
    assert response.status_code == 404
    denial = AccessDenial.objects.get(actor=f"user:{b_operator.pk}")
    assert denial.action.startswith("admin:list ")
    assert (denial.target, denial.target_tenant_id) == (tenant_a.tenant.pk, tenant_a.tenant.pk)


def test_tenant_filter_of_own_tenant_works_and_unknown_tenant_is_plain_404(client, tenant_b, b_operator):
    # when
    own = client.get(reverse("admin:ledger_account_changelist"), {"tenant": tenant_b.tenant.pk})
    unknown = client.get(reverse("admin:ledger_account_changelist"), {"tenant": "tnt_doesnotexist"})
    # then
    assert own.status_code == 200
    assert {a.tenant_id for a in own.context["cl"].result_list} == {tenant_b.tenant.pk}
    assert unknown.status_code == 404
    assert not AccessDenial.objects.exists()


def test_tenant_list_filter_offers_only_own_tenant(client, tenant_a, tenant_b, b_operator):
    # when
    response = client.get(reverse("admin:ledger_account_changelist"))
    # then
    tenant_filter = next(f for f in response.context["cl"].filter_specs if f.parameter_name == "tenant")
    assert tenant_filter.lookup_choices == [(tenant_b.tenant.pk, tenant_b.tenant.slug)]


def test_account_add_form_offers_only_own_tenant_and_refuses_another(client, tenant_a, tenant_b, b_operator):
    # given
    before = Account.objects.filter(tenant=tenant_a.tenant).count()
    # when
    page = client.get(reverse("admin:ledger_account_add"))
    posted = client.post(reverse("admin:ledger_account_add"), {
        "tenant": tenant_a.tenant.pk, "currency": "USD", "account_type": "customer", "normal_balance": "credit",
        "customer": "cus_smuggled", "name": "", "metadata": "{}"})
    # then
    assert page.status_code == 200
    offered = list(page.context["adminform"].form.fields["tenant"].queryset)
    assert offered == [tenant_b.tenant]
    assert posted.status_code == 200  # the form comes back with an error
    assert "tenant" in posted.context["adminform"].form.errors
    assert Account.objects.filter(tenant=tenant_a.tenant).count() == before
    assert not Account.objects.filter(customer="cus_smuggled").exists()


def test_freeze_action_cannot_reach_another_tenants_account(client, tenant_a, b_operator):
    # given
    account = customer_account(tenant_a)
    # when
    response = client.post(reverse("admin:ledger_account_changelist"), {
        "action": "freeze", "_selected_action": [account.pk], "confirm": "yes", "reason": "not mine"})
    # then
    assert response.status_code in (200, 302)
    account.refresh_from_db()
    assert account.status == Account.ACTIVE
    assert not Event.objects.filter(type="account.frozen").exists()


def money_objects(ctx):
    """A posted transfer and an active hold of the tenant, made through its API."""
    funding = ctx.post("/v1/accounts", {"currency": "USD", "account_type": "external", "normal_balance": "debit",
                                        "allow_overdraft": True}).json()["id"]
    customer = customer_account(ctx).pk
    txn = ctx.post("/v1/transactions", {"description": "fund", "entries": [
        {"account": funding, "direction": "debit", "amount": 5000},
        {"account": customer, "direction": "credit", "amount": 5000}]})
    assert txn.status_code == 201, txn.content
    hold = ctx.post("/v1/holds", {"account": customer, "amount": 1000, "expires_in": 3600})
    assert hold.status_code == 201, hold.content
    return {"transaction": txn.json()["id"], "hold": hold.json()["id"]}


@pytest.mark.parametrize(("kind", "model", "views"), [
    ("transaction", "ledger.ledgertransaction", ["change", "history"]),
    ("hold", "ledger.hold", ["change", "history"]),
])
def test_money_pages_of_another_tenant_are_404_and_leave_denials(client, tenant_a, b_operator, kind, model, views):
    # given
    target = money_objects(tenant_a)[kind]
    url_prefix = f"admin:{model.replace('.', '_')}"
    # when
    statuses = [client.get(reverse(f"{url_prefix}_{view}", args=[target])).status_code for view in views]
    listing = client.get(reverse(f"{url_prefix}_changelist"))
    # then
    assert statuses == [404] * len(views)
    denials = AccessDenial.objects.filter(actor=f"user:{b_operator.pk}")
    assert [(d.action, d.target, d.target_tenant_id) for d in denials] == [
        (f"admin:view {model}", target, tenant_a.tenant.pk)] * len(views)
    assert listing.status_code == 200
    assert target not in {obj.pk for obj in listing.context["cl"].result_list}
