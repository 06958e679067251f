"""The webhook pages of the admin: what an operator sees, the actions that write (through the
services, with evidence), what a viewer and another tenant's operator cannot do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import SUCCESS
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessDenial
from webhooks.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint

from .conftest import create_account, create_endpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "admin:webhooks_webhookendpoint_changelist"
DELIVERIES = "admin:webhooks_delivery_changelist"
EVENTS = "admin:webhooks_event_changelist"


@pytest.fixture(autouse=True)
def private_allowed(settings):
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True


def url_for(name: str) -> str:
    return f"http://127.0.0.1:9/{name}"  # never called: nothing here delivers


def account_event(ctx, customer: str = "cus_1") -> Event:
    account = create_account(ctx, customer=customer)
    return Event.objects.get(resource_id=account["id"], type="account.created")


def fail(delivery: Delivery, *, at=None, error: str = "HTTP 500") -> Delivery:
    """Record a delivery's final failed attempt (as the relay would after its last retry)."""
    at = at or timezone.now()
    DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts_count + 1, attempted_at=at,
                                   request_headers={"webhook-id": delivery.event_id}, status_code=500,
                                   duration_ms=12, response_body="upstream exploded", error=error)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.FAILED, completed_at=at, next_attempt_at=None,
                                                   attempts_count=delivery.attempts_count + 1)
    delivery.refresh_from_db()
    return delivery


def messages_of(response) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in response.context["messages"]]


def action_choices(response) -> set[str]:
    form = response.context.get("action_form")
    return set() if form is None else {value for value, _ in form.fields["action"].choices if value}


@pytest.fixture
def setup_a(tenant_a):
    """Tenant A: two endpoints, one event delivered to both; the delivery to `down` failed."""
    up = create_endpoint(tenant_a, url_for("up"), event_types=["account.created"], description="up")
    down = create_endpoint(tenant_a, url_for("down"), event_types=["account.created"], description="down")
    event = account_event(tenant_a)
    succeeded = Delivery.objects.get(event=event, endpoint_id=up["id"])
    Delivery.objects.filter(pk=succeeded.pk).update(status=Delivery.SUCCEEDED, completed_at=timezone.now(),
                                                    next_attempt_at=None, attempts_count=1)
    failed = fail(Delivery.objects.get(event=event, endpoint_id=down["id"]))
    WebhookEndpoint.objects.filter(pk=up["id"]).update(last_success_at=timezone.now())
    WebhookEndpoint.objects.filter(pk=down["id"]).update(failing_since=timezone.now() - timedelta(hours=3))
    return {"up": up, "down": down, "event": event, "succeeded": succeeded.pk, "failed": failed.pk}


@pytest.fixture
def operator(client, tenant_a):
    user = tenant_a.member("operator")
    client.force_login(user)
    return user


# --- what an operator sees -----------------------------------------------------------------------

def test_operator_sees_endpoints_with_status_failure_streak_and_last_success(client, setup_a, operator):
    # when
    response = client.get(reverse(ENDPOINTS))
    # then
    assert response.status_code == 200
    rows = {e.pk: e for e in response.context["cl"].result_list}
    assert set(rows) == {setup_a["up"]["id"], setup_a["down"]["id"]}
    assert rows[setup_a["down"]["id"]].failing_since is not None
    assert rows[setup_a["up"]["id"]].last_success_at is not None
    columns = set(response.context["cl"].list_display)
    assert {"status", "failing_since", "last_success_at"} <= columns
    assert {"disable", "enable", "redeliver_failed"} <= action_choices(response)
    # and the endpoint's page never shows its secret
    page = client.get(reverse("admin:webhooks_webhookendpoint_change", args=[setup_a["down"]["id"]]))
    assert page.status_code == 200
    assert setup_a["down"]["id"] in page.content.decode()
    assert setup_a["down"]["secret"].removeprefix("whsec_") not in page.content.decode()
    assert "whsec_" not in page.content.decode()


@pytest.mark.parametrize("query, expected", [
    ({"status__exact": "failed"}, {"failed"}),
    ({"status__exact": "succeeded"}, {"succeeded"}),
    ({"endpoint__id__exact": "<down>"}, {"failed"}),
    ({"endpoint__id__exact": "<up>"}, {"succeeded"}),
    ({}, {"failed", "succeeded"}),
], ids=["failed", "succeeded", "endpoint-down", "endpoint-up", "all"])
def test_deliveries_filter_by_status_and_endpoint(client, setup_a, operator, query, expected):
    # given
    names = {"<down>": setup_a["down"]["id"], "<up>": setup_a["up"]["id"]}
    query = {key: names.get(value, value) for key, value in query.items()}
    # when
    response = client.get(reverse(DELIVERIES), query)
    # then
    assert response.status_code == 200
    shown = {d.pk for d in response.context["cl"].result_list}
    assert shown == {setup_a[name] for name in expected}


def test_the_delivery_page_shows_its_attempts(client, setup_a, operator):
    # when
    response = client.get(reverse("admin:webhooks_delivery_change", args=[setup_a["failed"]]))
    # then
    assert response.status_code == 200
    text = response.content.decode()
    [formset] = [f for f in response.context["inline_admin_formsets"] if f.opts.model is DeliveryAttempt]
    assert [form.original.number for form in formset] == [1]
    for shown in ("upstream exploded", "HTTP 500", setup_a["event"].id):
        assert shown in text
    assert "webhook-id" in text  # the request headers sent


# --- actions ----------------------------------------------------------------------------------------

def test_disable_asks_for_a_reason_then_disables_and_emits_webhook_endpoint_disabled(client, tenant_a, setup_a,
                                                                                      operator):
    # given
    endpoint_id = setup_a["up"]["id"]
    body = {"action": "disable", "_selected_action": [endpoint_id]}
    # when: first the confirmation page
    asked = client.post(reverse(ENDPOINTS), body)
    # then
    assert asked.status_code == 200 and asked.templates[0].name == "admin/zentra/confirm_action.html"
    assert WebhookEndpoint.objects.get(pk=endpoint_id).status == "enabled"
    # when: confirmed with a reason
    done = client.post(reverse(ENDPOINTS), {**body, "confirm": "yes", "reason": "receiver decommissioned"},
                       follow=True)
    # then
    assert (SUCCESS, "Disable: 1 done.") in messages_of(done)
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert (endpoint.status, endpoint.disabled_reason) == ("disabled", "receiver decommissioned")
    event = Event.objects.get(type="webhook_endpoint.disabled", resource_id=endpoint_id)
    assert event.actor == f"user:{operator.pk}" and event.data["object"]["status"] == "disabled"
    latest = endpoint.history.first()
    assert latest.history_change_reason == "receiver decommissioned" and latest.history_user_id == operator.pk
    # and new events no longer go to it
    later = account_event(tenant_a, customer="cus_2")
    assert not Delivery.objects.filter(event=later, endpoint_id=endpoint_id).exists()


def test_reenable_enables_and_clears_the_failure_streak(client, setup_a, operator):
    # given: an endpoint disabled after failing for days
    endpoint_id = setup_a["down"]["id"]
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(status="disabled", disabled_reason="failing for 5 days")
    # when
    done = client.post(reverse(ENDPOINTS), {"action": "enable", "_selected_action": [endpoint_id], "confirm": "yes",
                                            "reason": "receiver fixed"}, follow=True)
    # then
    assert (SUCCESS, "Re-enable: 1 done.") in messages_of(done)
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert (endpoint.status, endpoint.disabled_reason, endpoint.failing_since) == ("enabled", "", None)
    assert endpoint.history.first().history_change_reason == "receiver fixed"
    assert not Event.objects.filter(type="webhook_endpoint.disabled").exists()


def test_redeliver_an_event_queues_it_to_every_subscribed_endpoint(client, setup_a, operator):
    # given
    event = setup_a["event"]
    before = set(Delivery.objects.filter(event=event).values_list("pk", flat=True))
    # when
    done = client.post(reverse(EVENTS), {"action": "redeliver", "_selected_action": [event.pk], "confirm": "yes",
                                         "reason": "receiver lost its data"}, follow=True)
    # then
    assert (SUCCESS, "Redeliver: 1 done.") in messages_of(done)
    new = Delivery.objects.filter(event=event).exclude(pk__in=before)
    assert {d.endpoint_id for d in new} == {setup_a["up"]["id"], setup_a["down"]["id"]}
    assert {(d.status, d.requested_by) for d in new} == {("pending", f"user:{operator.pk}")}


def test_redeliver_a_delivery_queues_its_event_to_its_endpoint(client, setup_a, operator):
    # given
    failed = Delivery.objects.get(pk=setup_a["failed"])
    # when
    done = client.post(reverse(DELIVERIES), {"action": "redeliver", "_selected_action": [failed.pk],
                                             "confirm": "yes", "reason": "retry after fix"}, follow=True)
    # then
    assert (SUCCESS, "Redeliver: 1 done.") in messages_of(done)
    [new] = Delivery.objects.filter(event=failed.event).exclude(pk__in=[setup_a["failed"], setup_a["succeeded"]])
    assert (new.endpoint_id, new.status, new.requested_by) == (failed.endpoint_id, "pending", f"user:{operator.pk}")


def test_redeliver_failed_since_queues_the_failures_after_that_moment(client, tenant_a, setup_a, operator):
    # given: a second failure to `down` long ago, before T
    endpoint_id = setup_a["down"]["id"]
    old_event = account_event(tenant_a, customer="cus_old")
    old = fail(Delivery.objects.get(event=old_event, endpoint_id=endpoint_id),
               at=timezone.now() - timedelta(days=3))
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    since = timezone.now() - timedelta(days=1)
    body = {"action": "redeliver_failed", "_selected_action": [endpoint_id]}
    # when: first the form
    asked = client.post(reverse(ENDPOINTS), body)
    # then
    assert asked.status_code == 200 and "since" in asked.context["form"].fields
    assert Delivery.objects.filter(endpoint_id=endpoint_id).count() == 2
    # when: confirmed with T
    done = client.post(reverse(ENDPOINTS), {**body, "confirm": "yes", "since": since.strftime("%Y-%m-%d %H:%M:%S")},
                       follow=True)
    # then: the recent failure is queued again, the old one is not
    assert (SUCCESS, f"{endpoint_id}: 1 event(s) queued again.") in messages_of(done)
    [new] = Delivery.objects.filter(endpoint_id=endpoint_id, status="pending")
    assert new.event_id == setup_a["event"].id and new.redelivery_of_id == setup_a["failed"]
    assert new.requested_by == f"user:{operator.pk}"


# --- who may not -----------------------------------------------------------------------------------

def test_a_viewer_sees_but_cannot_act(client, tenant_a, setup_a):
    # given
    client.force_login(tenant_a.member("viewer"))
    endpoint_id, event = setup_a["up"]["id"], setup_a["event"]
    deliveries_before = Delivery.objects.count()
    # when
    pages = [client.get(reverse(name)) for name in (ENDPOINTS, DELIVERIES, EVENTS)]
    attempts = [
        client.post(reverse(ENDPOINTS), {"action": "disable", "_selected_action": [endpoint_id], "confirm": "yes",
                                         "reason": "viewer"}),
        client.post(reverse(ENDPOINTS), {"action": "redeliver_failed", "_selected_action": [setup_a["down"]["id"]],
                                         "confirm": "yes", "since": "2000-01-01 00:00:00"}),
        client.post(reverse(EVENTS), {"action": "redeliver", "_selected_action": [event.pk], "confirm": "yes",
                                      "reason": "viewer"}),
        client.post(reverse(DELIVERIES), {"action": "redeliver", "_selected_action": [setup_a["failed"]],
                                          "confirm": "yes", "reason": "viewer"}),
    ]
    # then: the pages, without actions that change anything (a test event is for anyone who
    # may see the endpoint)
    for page in pages:
        assert page.status_code == 200
        assert action_choices(page) <= {"send_test"}
    # then: nothing happened
    for attempt in attempts:
        assert attempt.status_code in (200, 302, 403)
    assert WebhookEndpoint.objects.get(pk=endpoint_id).status == "enabled"
    assert Delivery.objects.count() == deliveries_before
    assert not Event.objects.filter(type="webhook_endpoint.disabled").exists()


@pytest.mark.parametrize("page", ["webhookendpoint", "delivery"])
def test_an_operator_of_another_tenant_gets_404_and_leaves_a_denial(client, tenant_b, setup_a, page):
    # given
    b_operator = tenant_b.member("operator")
    client.force_login(b_operator)
    target = setup_a["down"]["id"] if page == "webhookendpoint" else setup_a["failed"]
    # when
    response = client.get(reverse(f"admin:webhooks_{page}_change", args=[target]))
    # then
    assert response.status_code == 404
    denial = AccessDenial.objects.get(actor=f"user:{b_operator.pk}")
    assert denial.action == f"admin:view webhooks.{page}" and denial.target == target
    assert denial.target_tenant_id == setup_a["event"].tenant_id


def test_an_operator_of_another_tenant_cannot_act_on_its_endpoints(client, tenant_b, setup_a):
    # given
    client.force_login(tenant_b.member("operator"))
    endpoint_id = setup_a["up"]["id"]
    # when
    client.post(reverse(ENDPOINTS), {"action": "disable", "_selected_action": [endpoint_id], "confirm": "yes",
                                     "reason": "not mine"})
    listed = client.get(reverse(ENDPOINTS))
    # then
    assert WebhookEndpoint.objects.get(pk=endpoint_id).status == "enabled"
    assert list(listed.context["cl"].result_list) == []


def test_the_delivery_list_offers_no_endpoint_of_another_tenant_in_its_filter(client, tenant_b, setup_a):
    # given: tenant B's operator, who has an endpoint of its own
    create_endpoint(tenant_b, url_for("beta-own"))
    client.force_login(tenant_b.member("operator"))
    # when
    response = client.get(reverse(DELIVERIES))
    # then
    assert response.status_code == 200
    text = response.content.decode()
    for foreign in (setup_a["up"], setup_a["down"]):
        assert foreign["id"] not in text, "another tenant's endpoint is offered in the endpoint filter"
        assert foreign["url"] not in text
