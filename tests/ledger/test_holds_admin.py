"""Operator review of holds in the admin: the list and its attention filters, the hold page with
its ledger transactions, events and history, and the release and capture actions (confirmation
page, reason, service call, evidence). Viewer and compliance see but cannot act; another
tenant's operator gets 404 and leaves an AccessDenial."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import ERROR, SUCCESS
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from audit.models import AccessDenial
from ledger.models import Account, Hold, LedgerTransaction
from ledger.services.accounts import account_create
from ledger.services.holds import hold_expire, hold_place, hold_release
from webhooks.models import Event

from .checks import customer_account, external_account, transfer

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
CHANGELIST = "admin:ledger_hold_changelist"


def change_url(hold) -> str:
    return reverse("admin:ledger_hold_change", args=[hold.pk if isinstance(hold, Hold) else hold])


def place(tenant, account, amount: int, *, seconds: float) -> Hold:
    return hold_place(tenant=tenant, account_id=account.id, amount=amount,
                      expires_at=timezone.now() + timedelta(seconds=seconds), actor=SYSTEM, reference=f"ref-{amount}")


@pytest.fixture
def desk(tenant_a, clock):
    """Tenant A: a customer holding 10,000, a merchant, a EUR account; one hold active for three
    hours, one expiring within the hour, one released, one lapsed (not yet expired by the job)
    and one expired by the job."""
    tenant = tenant_a.tenant

    class Desk:
        customer = customer_account(tenant)
        merchant = account_create(tenant=tenant, currency="USD", account_type="merchant", customer="mer_1",
                                  actor=SYSTEM)
        eur = customer_account(tenant, currency="EUR")

    transfer(tenant, external_account(tenant), Desk.customer, 10_000)
    Desk.later = place(tenant, Desk.customer, 1_000, seconds=3 * 3600)
    Desk.expiring = place(tenant, Desk.customer, 1_100, seconds=30 * 60)
    Desk.released = place(tenant, Desk.customer, 1_200, seconds=20 * 60)
    hold_release(tenant=tenant, hold_id=Desk.released.id, actor=SYSTEM, reason="setup")
    Desk.lapsed = place(tenant, Desk.customer, 1_300, seconds=0.3)
    Desk.expired = place(tenant, Desk.customer, 1_400, seconds=0.3)
    clock.past(Desk.expired.expires_at)
    assert hold_expire(hold_id=Desk.expired.id, actor=Actor.system("hold_expiry_job")) is not None
    return Desk


def listed(response) -> set[str]:
    assert response.status_code == 200, response.content[:500]
    return {hold.pk for hold in response.context["cl"].result_list}


def action_choices(response) -> set[str]:
    form = response.context.get("action_form")
    if form is None:
        return set()
    return {value for value, _ in form.fields["action"].choices if value}


def messages_of(response) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in response.context["messages"]]


def state(hold: Hold) -> tuple:
    hold.refresh_from_db()
    return (hold.status, hold.captured_amount, hold.released_amount, hold.resolution_reason, hold.history.count(),
            LedgerTransaction.objects.filter(hold=hold).count(), Event.objects.filter(resource_id=hold.pk).count())


# --- the list -----------------------------------------------------------------------------------


def test_operator_sees_the_holds_list_with_its_attention_filters(client, tenant_a, tenant_b, desk):
    # given: a hold of tenant B expiring soon, which A's operator must never see
    b_customer = customer_account(tenant_b.tenant)
    transfer(tenant_b.tenant, external_account(tenant_b.tenant), b_customer, 500)
    b_hold = place(tenant_b.tenant, b_customer, 100, seconds=600)
    client.force_login(tenant_a.member("operator"))
    every = {desk.later.pk, desk.expiring.pk, desk.released.pk, desk.lapsed.pk, desk.expired.pk}
    # when / then
    everything = client.get(reverse(CHANGELIST))
    assert listed(everything) == every
    assert b_hold.pk not in everything.content.decode()
    content = everything.content.decode()
    assert "Expiring within an hour" in content and "Expired, not yet released" in content
    assert "(expiry job pending)" in content  # the lapsed hold shows its effective status
    assert {"release", "capture"} <= action_choices(everything)
    assert listed(client.get(reverse(CHANGELIST), {"attention": "expiring"})) == {desk.expiring.pk}
    assert listed(client.get(reverse(CHANGELIST), {"attention": "lapsed"})) == {desk.lapsed.pk}
    assert listed(client.get(reverse(CHANGELIST), {"status__exact": "active"})) == {
        desk.later.pk, desk.expiring.pk, desk.lapsed.pk}
    assert listed(client.get(reverse(CHANGELIST), {"status__exact": "expired"})) == {desk.expired.pk}
    assert listed(client.get(reverse(CHANGELIST), {"q": desk.lapsed.pk})) == {desk.lapsed.pk}


def test_hold_page_shows_its_ledger_transactions_events_and_history(client, tenant_a, desk):
    # given
    client.force_login(tenant_a.member("operator"))
    # when
    response = client.get(change_url(desk.released))
    # then
    assert response.status_code == 200
    content = response.content.decode()
    transactions = list(LedgerTransaction.objects.filter(hold=desk.released).values_list("id", "kind"))
    assert sorted(kind for _, kind in transactions) == ["hold", "release"]
    for txn_id, _ in transactions:
        assert txn_id in content
    for event in Event.objects.filter(resource_id=desk.released.pk):
        assert event.type in content and event.pk in content
    assert "hold.created" in content and "hold.released" in content
    history = client.get(reverse("admin:ledger_hold_history", args=[desk.released.pk]))
    assert history.status_code == 200
    assert "setup" in history.content.decode()  # the release's reason, kept in the history


# --- release ------------------------------------------------------------------------------------


def test_release_action_confirms_then_releases_through_the_service_with_the_reason(client, tenant_a, desk):
    # given
    operator = tenant_a.member("operator")
    client.force_login(operator)
    before = state(desk.expiring)
    # when: the action, not yet confirmed
    page = client.post(reverse(CHANGELIST), {"action": "release", "_selected_action": [desk.expiring.pk]})
    # then: a confirmation page asking for a reason, nothing changed
    assert page.status_code == 200
    assert page.templates[0].name == "admin/zentra/confirm_action.html"
    assert [h.pk for h in page.context["objects"]] == [desk.expiring.pk]
    assert 'name="reason"' in page.content.decode()
    assert state(desk.expiring) == before
    # when: confirmed without a reason
    empty = client.post(reverse(CHANGELIST), {"action": "release", "_selected_action": [desk.expiring.pk],
                                              "confirm": "yes", "reason": ""})
    assert empty.status_code == 200 and "reason" in empty.context["form"].errors
    assert state(desk.expiring) == before
    # when: confirmed with a reason
    done = client.post(reverse(CHANGELIST), {"action": "release", "_selected_action": [desk.expiring.pk],
                                             "confirm": "yes", "reason": "order canceled by phone"}, follow=True)
    # then
    assert done.status_code == 200
    assert (SUCCESS, "Release: 1 done.") in messages_of(done)
    hold = Hold.objects.get(pk=desk.expiring.pk)
    assert (hold.status, hold.released_amount) == ("released", 1_100)
    assert hold.resolution_reason == "order canceled by phone"
    assert hold.resolved_by == f"user:{operator.pk}"
    latest = hold.history.first()
    assert latest.status == "released"
    assert latest.history_user_id == operator.pk
    assert latest.history_actor == f"user:{operator.pk}"
    assert latest.history_change_reason == "order canceled by phone"
    txn = LedgerTransaction.objects.get(hold=hold, kind="release")
    assert txn.actor == f"user:{operator.pk}"
    event = Event.objects.get(resource_id=hold.pk, type="hold.released")
    assert event.actor == f"user:{operator.pk}" and event.data["object"]["status"] == "released"
    # still reserved: `later` (1,000) and `lapsed` (1,300, expired but not yet released by the job)
    assert Account.objects.get(pk=desk.customer.pk).posted_balance == 10_000 - 1_000 - 1_300


def test_release_action_on_a_hold_no_longer_active_reports_the_error_and_changes_nothing(client, tenant_a, desk):
    # given
    client.force_login(tenant_a.member("operator"))
    before = state(desk.released), state(desk.lapsed)
    # when
    response = client.post(reverse(CHANGELIST), {"action": "release",
                                                 "_selected_action": [desk.released.pk, desk.lapsed.pk],
                                                 "confirm": "yes", "reason": "again"}, follow=True)
    # then
    errors = [text for level, text in messages_of(response) if level == ERROR]
    assert len(errors) == 2 and all("hold_not_active" in text for text in errors), errors
    assert (state(desk.released), state(desk.lapsed)) == before


# --- capture ------------------------------------------------------------------------------------


def test_capture_action_asks_for_a_destination_and_a_reason_then_captures(client, tenant_a, tenant_b, desk):
    # given
    operator = tenant_a.member("operator")
    client.force_login(operator)
    before = state(desk.later)
    # when: the action, not yet confirmed
    page = client.post(reverse(CHANGELIST), {"action": "capture", "_selected_action": [desk.later.pk]})
    # then: destinations are the tenant's active, non-system accounts in the hold's currency
    assert page.status_code == 200
    assert page.templates[0].name == "admin/zentra/confirm_action.html"
    form = page.context["form"]
    assert set(form.fields) >= {"destination", "reason"}
    choices = set(form.fields["destination"].queryset.values_list("pk", flat=True))
    assert desk.merchant.pk in choices
    assert desk.eur.pk not in choices
    assert not Account.objects.filter(pk__in=choices, is_system=True).exists()
    assert not Account.objects.filter(pk__in=choices).exclude(tenant=tenant_a.tenant).exists()
    assert state(desk.later) == before
    # when: confirmed with a destination outside the choices (another currency, another tenant)
    b_account = customer_account(tenant_b.tenant)
    for outsider in (desk.eur, b_account):
        refused = client.post(reverse(CHANGELIST), {"action": "capture", "_selected_action": [desk.later.pk],
                                                    "confirm": "yes", "destination": outsider.pk, "reason": "x"})
        assert refused.status_code == 200 and "destination" in refused.context["form"].errors
        assert state(desk.later) == before
    # when: confirmed properly
    done = client.post(reverse(CHANGELIST), {"action": "capture", "_selected_action": [desk.later.pk],
                                             "confirm": "yes", "destination": desk.merchant.pk,
                                             "reason": "goods shipped"}, follow=True)
    # then
    assert done.status_code == 200
    assert (SUCCESS, f"{desk.later.pk}: captured.") in messages_of(done)
    hold = Hold.objects.get(pk=desk.later.pk)
    assert (hold.status, hold.captured_amount, hold.released_amount) == ("captured", 1_000, 0)
    assert hold.resolution_reason == "goods shipped" and hold.resolved_by == f"user:{operator.pk}"
    latest = hold.history.first()
    assert (latest.history_user_id, latest.history_change_reason) == (operator.pk, "goods shipped")
    assert Account.objects.get(pk=desk.merchant.pk).posted_balance == 1_000
    assert Event.objects.get(resource_id=hold.pk, type="hold.captured").actor == f"user:{operator.pk}"


# --- roles that see but cannot act -------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "compliance"])
def test_viewer_and_compliance_see_holds_but_cannot_release_or_capture(client, tenant_a, desk, role):
    # given
    client.force_login(tenant_a.member(role))
    # when / then: they see the list and the page
    changelist = client.get(reverse(CHANGELIST))
    assert listed(changelist) == {desk.later.pk, desk.expiring.pk, desk.released.pk, desk.lapsed.pk,
                                  desk.expired.pk}
    assert not {"release", "capture"} & action_choices(changelist)
    page = client.get(change_url(desk.expiring))
    assert page.status_code == 200 and desk.expiring.pk in page.content.decode()
    # when: they post the actions anyway
    before = state(desk.expiring), Account.objects.get(pk=desk.merchant.pk).posted_balance
    for body in ({"action": "release", "reason": "sneaky"},
                 {"action": "capture", "destination": desk.merchant.pk, "reason": "sneaky"}):
        response = client.post(reverse(CHANGELIST), {**body, "_selected_action": [desk.expiring.pk],
                                                     "confirm": "yes"}, follow=True)
        assert response.status_code in (200, 403)
        assert not any(level == SUCCESS for level, _ in messages_of(response)) if response.status_code == 200 else True
    # then: nothing changed
    assert (state(desk.expiring), Account.objects.get(pk=desk.merchant.pk).posted_balance) == before


# --- another tenant's operator -----------------------------------------------------------------


def test_operator_of_another_tenant_gets_404_and_leaves_an_access_denial(client, tenant_a, tenant_b, desk):
    # given
    outsider = tenant_b.member("operator")
    client.force_login(outsider)
    # when
    response = client.get(change_url(desk.expiring))
    # then
    assert response.status_code == 404
    denial = AccessDenial.objects.get(target=desk.expiring.pk)
    assert denial.actor == f"user:{outsider.pk}"
    assert denial.target_tenant_id == tenant_a.tenant.pk
    assert denial.action == "admin:view ledger.hold"
    # and the list and the actions do not reach tenant A's holds either
    assert listed(client.get(reverse(CHANGELIST))) == set()
    before = state(desk.expiring)
    client.post(reverse(CHANGELIST), {"action": "release", "_selected_action": [desk.expiring.pk],
                                      "confirm": "yes", "reason": "not mine"}, follow=True)
    assert state(desk.expiring) == before
    assert client.get(reverse("admin:ledger_hold_history", args=[desk.expiring.pk])).status_code == 404
