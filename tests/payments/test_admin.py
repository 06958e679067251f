"""The payments back office: the review queue and its approve / decline actions (confirmation
page, reason, service call, history), the intent page with everything that decided and carried
the payment, roles that see but cannot act, other tenants' operators, and the provider and
route controls (an outage started by an action, closing a circuit), each with a reason."""

from __future__ import annotations

import pytest
from django.contrib.messages import ERROR, SUCCESS, WARNING
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessDenial, Approval
from backoffice.templatetags.zentra import linkify
from ledger.models import Hold, LedgerTransaction
from payments.models import PaymentIntent, PolicyDecision, PolicyRule
from payments.services.sandbox import sandbox_settle_due
from tenants.models import Tenant
from webhooks.models import Event

from .test_support import FUNDS, confirmed, deliver_signed, event_body, open_desk, provider, route, set_provider

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:payments_paymentintent_changelist"
REVIEW_QUEUE = {"status__exact": "requires_review"}
APPROVALS = "admin:audit_approval_changelist"


def change_url(intent_id: str) -> str:
    return reverse("admin:payments_paymentintent_change", args=[intent_id])


def listed(response) -> set[str]:
    assert response.status_code == 200, response.content[:500]
    return {obj.pk for obj in response.context["cl"].result_list}


def action_choices(response) -> set[str]:
    form = response.context.get("action_form")
    return set() if form is None else {value for value, _ in form.fields["action"].choices if value}


def messages_of(response) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in response.context["messages"]]


def state(intent_id: str) -> tuple:
    intent = PaymentIntent.objects.get(pk=intent_id)
    hold = Hold.objects.filter(pk=intent.hold_id).values_list("status", flat=True).first()
    return (intent.status, hold, intent.transitions.count(), intent.history.count(),
            intent.provider_attempts.count(), Event.objects.filter(resource_id=intent_id).count())


@pytest.fixture
def queue(tenant_a, tenant_b):
    """Tenant A: two payments in review (new account, large amounts) and one processing;
    tenant B: one payment in review, which A's people must never reach."""
    desk = open_desk(tenant_a, funds=500_000)
    PolicyRule.objects.create(tenant=desk.tenant, kind="risk_new_account",
                              params={"amount_above": 100_000, "younger_than_days": 7})
    desk.first = confirmed(desk, 125_000, expect="requires_review")["id"]
    desk.second = confirmed(desk, 150_000, expect="requires_review")["id"]
    desk.moving = confirmed(desk, 10_000)["id"]
    other = open_desk(tenant_b)
    PolicyRule.objects.create(tenant=other.tenant, kind="risk_new_account",
                              params={"amount_above": 100_000, "younger_than_days": 7})
    desk.foreign = confirmed(other, 125_000, expect="requires_review")["id"]
    return desk


# --- the queue ----------------------------------------------------------------------------------------


def test_operator_sees_the_review_queue_of_its_tenant_only(client, tenant_a, queue):
    client.force_login(tenant_a.member("operator"))
    review = client.get(reverse(CHANGELIST), REVIEW_QUEUE)
    assert listed(review) == {queue.first, queue.second}
    assert {"approve", "decline"} <= action_choices(review)
    assert queue.foreign not in review.content.decode()
    assert listed(client.get(reverse(CHANGELIST))) == {queue.first, queue.second, queue.moving}


# --- approve ---------------------------------------------------------------------------------------------


def test_approve_action_confirms_then_approves_through_the_service_and_keeps_history(client, tenant_a, queue):
    # given
    operator = tenant_a.member("operator")
    client.force_login(operator)
    before = state(queue.first)
    # when: the action, not yet confirmed
    page = client.post(reverse(CHANGELIST), {"action": "approve", "_selected_action": [queue.first]})
    # then: a confirmation page asking for a reason; nothing changed
    assert page.status_code == 200
    assert page.templates[0].name == "admin/zentra/confirm_action.html"
    assert [i.pk for i in page.context["objects"]] == [queue.first]
    assert 'name="reason"' in page.content.decode()
    assert state(queue.first) == before
    # when: confirmed without a reason
    empty = client.post(reverse(CHANGELIST), {"action": "approve", "_selected_action": [queue.first],
                                              "confirm": "yes", "reason": ""})
    assert empty.status_code == 200 and "reason" in empty.context["form"].errors
    assert state(queue.first) == before
    # when: confirmed with a reason, for a payment above the tenant's review threshold (1,000.00)
    done = client.post(reverse(CHANGELIST), {"action": "approve", "_selected_action": [queue.first],
                                             "confirm": "yes", "reason": "customer called, verified"}, follow=True)
    # then: a proposal for a second person (tenants/approval_rules.py); the intent waits as it was
    assert done.status_code == 200
    (level, text), = messages_of(done)
    assert level == WARNING and text.startswith("Proposed, waiting for a second person: Approve " + queue.first)
    assert state(queue.first) == before
    proposal = Approval.objects.get(target=queue.first, status="pending")
    assert proposal.proposed_by == f"user:{operator.pk}"
    # when: the proposer approves their own in the Approvals admin
    own = client.post(reverse(APPROVALS), {"action": "approve", "_selected_action": [proposal.pk],
                                           "confirm": "yes", "reason": ""}, follow=True)
    # then: refused, with evidence; nothing moves
    assert any(level == ERROR and "cannot approve it: a second person must" in text
               for level, text in messages_of(own))
    assert AccessDenial.objects.filter(action="approve approval", target=proposal.pk).count() == 1
    assert state(queue.first) == before
    # when: a second person (the owner) approves it
    owner = tenant_a.member("owner")
    client.force_login(owner)
    approved = client.post(reverse(APPROVALS), {"action": "approve", "_selected_action": [proposal.pk],
                                                "confirm": "yes", "reason": "agreed"}, follow=True)
    assert (SUCCESS, "Approve: 1 done.") in messages_of(approved)
    # then: processing, carried by sandbox-a, the decision recorded as the approval naming both
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decided_by, proposal.result) == ("approved", f"user:{owner.pk}", queue.first)
    intent = PaymentIntent.objects.get(pk=queue.first)
    assert intent.status == "processing" and intent.route_id == route(queue.tenant, "sandbox-a").id
    assert list(intent.provider_attempts.values_list("outcome", flat=True)) == ["accepted"]
    transition = intent.transitions.order_by("at", "id").last()
    assert (transition.from_status, transition.to_status) == ("requires_review", "processing")
    assert transition.actor == f"approval:{proposal.pk}"
    assert "customer called, verified" in transition.reason
    approval = [h for h in intent.history.all() if "customer called, verified" in (h.history_change_reason or "")]
    assert len(approval) == 1, [h.history_change_reason for h in intent.history.all()]
    assert approval[0].status == "processing" and approval[0].history_actor == f"approval:{proposal.pk}"
    assert intent.history.filter(status="requires_review").exists()  # the state before, kept
    event = Event.objects.get(resource_id=queue.first, type="payment_intent.processing")
    assert event.actor == f"approval:{proposal.pk}"
    assert listed(client.get(reverse(CHANGELIST), REVIEW_QUEUE)) == {queue.second}
    # and it settles
    assert sandbox_settle_due() == 2  # this one and the small payment that never needed review
    assert PaymentIntent.objects.get(pk=queue.first).status == "succeeded"
    assert queue.balances()["merchant"] == 125_000 + 10_000


def test_below_the_tenants_review_threshold_an_operator_approves_alone(client, tenant_a, queue):
    # given: a tenant whose operators approve reviews up to 2,000.00 alone
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(approval_review_above=200_000)
    operator = tenant_a.member("operator")
    client.force_login(operator)
    # when
    done = client.post(reverse(CHANGELIST), {"action": "approve", "_selected_action": [queue.first],
                                             "confirm": "yes", "reason": "customer called, verified"}, follow=True)
    # then
    assert (SUCCESS, "Approve: 1 done.") in messages_of(done)
    intent = PaymentIntent.objects.get(pk=queue.first)
    assert intent.status == "processing" and not Approval.objects.exists()
    assert intent.transitions.order_by("at", "id").last().actor == f"user:{operator.pk}"


def test_decline_action_fails_the_intent_and_releases_the_hold(client, tenant_a, queue):
    # given
    operator = tenant_a.member("operator")
    client.force_login(operator)
    reserve_before = queue.balances()["reserve"]
    # when
    page = client.post(reverse(CHANGELIST), {"action": "decline", "_selected_action": [queue.second]})
    assert page.templates[0].name == "admin/zentra/confirm_action.html"
    done = client.post(reverse(CHANGELIST), {"action": "decline", "_selected_action": [queue.second],
                                             "confirm": "yes", "reason": "mule pattern"}, follow=True)
    # then
    assert (SUCCESS, "Decline: 1 done.") in messages_of(done)
    intent = PaymentIntent.objects.get(pk=queue.second)
    assert intent.status == "failed" and "mule pattern" in intent.failure_reason
    assert Hold.objects.get(pk=intent.hold_id).status == "released"
    assert queue.balances()["reserve"] == reserve_before - 150_000
    transition = intent.transitions.order_by("at", "id").last()
    assert (transition.to_status, transition.actor) == ("failed", f"user:{operator.pk}")
    assert intent.history.first().history_user_id == operator.pk
    assert intent.provider_attempts.count() == 0


def test_action_on_an_intent_not_in_review_reports_the_error_and_changes_nothing(client, tenant_a, queue):
    client.force_login(tenant_a.member("operator"))
    before = state(queue.moving)
    done = client.post(reverse(CHANGELIST), {"action": "decline", "_selected_action": [queue.moving],
                                             "confirm": "yes", "reason": "too late"}, follow=True)
    errors = [text for level, text in messages_of(done) if level == ERROR]
    assert len(errors) == 1 and "invalid_state_transition" in errors[0], messages_of(done)
    assert state(queue.moving) == before


# --- the intent page ---------------------------------------------------------------------------------------


def test_intent_page_shows_transitions_decisions_attempts_ledger_and_events(client, tenant_a):
    # given: a payment that failed over from sandbox-a to sandbox-b and settled
    desk = open_desk(tenant_a)
    PolicyRule.objects.create(tenant=desk.tenant, kind="amount_limit", params={"min": 100, "max": 1_000_000})
    set_provider(desk.tenant, "sandbox-a", outage=True)
    intent_id = confirmed(desk, 125_000)["id"]
    assert deliver_signed(provider(desk.tenant, "sandbox-b"), event_body(intent_id)).status_code == 200
    client.force_login(tenant_a.member("operator"))
    # when
    response = client.get(change_url(intent_id))
    # then
    assert response.status_code == 200
    content = response.content.decode()
    intent = PaymentIntent.objects.get(pk=intent_id)
    for transition in intent.transitions.all():
        assert f"<td>{transition.from_status or '·'}</td><td>{transition.to_status}</td>" in content
    decisions = list(PolicyDecision.objects.filter(intent_id=intent_id))
    assert decisions and all(str(linkify(d.reason)) in content for d in decisions)  # ids in reasons are links
    # the inputs each rule saw, as a key/value table
    with_inputs = [d for d in decisions if d.inputs]
    assert with_inputs and all(f"<th>{key}</th>" in content for d in with_inputs for key in d.inputs)
    assert "<td>sandbox-a</td><td>error</td>" in content and "<td>sandbox-b</td><td>accepted</td>" in content
    transactions = LedgerTransaction.objects.filter(tenant=desk.tenant, kind__in=["hold", "capture", "settlement"])
    assert transactions.count() == 3
    for txn in transactions:  # every id a link to its page
        assert f'href="{reverse("admin:ledger_ledgertransaction_change", args=[txn.id])}"' in content
    events = list(Event.objects.filter(resource_id=intent_id))
    assert {e.type for e in events} == {"payment_intent.created", "payment_intent.processing",
                                        "payment_intent.succeeded"}
    for event in events:
        assert f'href="{reverse("admin:webhooks_event_change", args=[event.id])}"' in content
        assert event.type in content
    # actors by name, never as `kind:id`
    assert "by system:" not in content and "api_key:key_" not in content


# --- roles that see but cannot act -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "compliance"])
def test_viewer_sees_the_queue_and_the_page_but_cannot_approve_or_decline(client, tenant_a, queue, role):
    # given
    client.force_login(tenant_a.member(role))
    # when / then: they see
    review = client.get(reverse(CHANGELIST), REVIEW_QUEUE)
    assert listed(review) == {queue.first, queue.second}
    assert not {"approve", "decline"} & action_choices(review)
    page = client.get(change_url(queue.first))
    assert page.status_code == 200 and queue.first in page.content.decode()
    # when: they post the actions anyway
    before = state(queue.first)
    for action in ("approve", "decline"):
        response = client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [queue.first],
                                                     "confirm": "yes", "reason": "sneaky"}, follow=True)
        assert response.status_code in (200, 403)
        if response.status_code == 200:
            assert not any(level == SUCCESS for level, _ in messages_of(response))
    # then: nothing changed
    assert state(queue.first) == before


# --- another tenant's operator ---------------------------------------------------------------------------


def test_operator_of_another_tenant_gets_404_and_leaves_an_access_denial(client, tenant_b, queue):
    # given
    outsider = tenant_b.member("operator")
    client.force_login(outsider)
    # when
    response = client.get(change_url(queue.first))
    # then
    assert response.status_code == 404
    denial = AccessDenial.objects.get(target=queue.first)
    assert denial.actor == f"user:{outsider.pk}"
    assert denial.target_tenant_id == queue.tenant.pk
    assert denial.action == "admin:view payments.paymentintent"
    # and neither the queue nor the actions reach tenant A's intents
    assert listed(client.get(reverse(CHANGELIST), REVIEW_QUEUE)) == {queue.foreign}
    before = state(queue.first)
    client.post(reverse(CHANGELIST), {"action": "approve", "_selected_action": [queue.first],
                                      "confirm": "yes", "reason": "not mine"}, follow=True)
    assert state(queue.first) == before


# --- providers and routes ----------------------------------------------------------------------------------


def test_provider_outage_started_by_an_action_makes_the_next_confirmation_fail_over(client, tenant_a, tenant_b):
    # given
    desk = open_desk(tenant_a)
    operator = tenant_a.member("operator")
    client.force_login(operator)
    sandbox_a = provider(desk.tenant, "sandbox-a")
    changelist = reverse("admin:payments_provider_changelist")
    selected = {"action": "start_outage", "_selected_action": [sandbox_a.pk]}
    # when: the operator asks, then confirms with a reason
    asked = client.post(changelist, selected)
    assert asked.status_code == 200 and b"Yes, put in an outage" in asked.content
    assert provider(desk.tenant, "sandbox-a").outage is False
    saved = client.post(changelist, {**selected, "confirm": "yes", "reason": "provider status page: down"},
                        follow=True)
    # then
    assert saved.status_code == 200
    sandbox_a.refresh_from_db()
    assert sandbox_a.outage is True and sandbox_a.mode == "approve"
    latest = sandbox_a.history.first()
    assert (latest.history_user_id, latest.history_change_reason) == (operator.pk, "provider status page: down")
    assert provider(tenant_b.tenant, "sandbox-a").outage is False
    # when: a payment is confirmed
    body = confirmed(desk, 10_000)
    # then: it failed over to sandbox-b
    assert [(a["provider"], a["outcome"]) for a in body["provider_attempts"]] == [
        (sandbox_a.pk, "error"), (provider(desk.tenant, "sandbox-b").pk, "accepted")]


def test_viewer_cannot_switch_a_provider_to_outage(client, tenant_a):
    desk = open_desk(tenant_a)
    sandbox_a = provider(desk.tenant, "sandbox-a")
    client.force_login(tenant_a.member("viewer"))
    changelist = reverse("admin:payments_provider_changelist")
    listing = client.get(changelist)
    assert listing.status_code == 200 and "start_outage" not in action_choices(listing)
    client.post(changelist, {"action": "start_outage", "_selected_action": [sandbox_a.pk], "confirm": "yes",
                             "reason": "forged"})
    sandbox_a.refresh_from_db()
    assert sandbox_a.outage is False
    assert confirmed(desk, 10_000)["provider_attempts"][0]["outcome"] == "accepted"


def test_reset_circuit_action_closes_an_open_route(client, tenant_a):
    # given: route a down after a failure with a threshold of 1
    desk = open_desk(tenant_a)
    route_a = route(desk.tenant, "sandbox-a")
    route_a.failure_threshold = 1
    route_a.save(update_fields=["failure_threshold"])
    set_provider(desk.tenant, "sandbox-a", outage=True)
    confirmed(desk, 1_000)
    set_provider(desk.tenant, "sandbox-a", outage=False)
    route_a.refresh_from_db()
    assert route_a.down_until > timezone.now()
    operator = tenant_a.member("operator")
    client.force_login(operator)
    listing = client.get(reverse("admin:payments_providerroute_changelist"))
    assert "open until" in listing.content.decode()
    # when
    client.post(reverse("admin:payments_providerroute_changelist"),
                {"action": "reset_circuit", "_selected_action": [route_a.pk], "confirm": "yes",
                 "reason": "sandbox-a answers again"}, follow=True)
    # then
    route_a.refresh_from_db()
    assert (route_a.consecutive_failures, route_a.down_until) == (0, None)
    latest = route_a.history.first()
    assert (latest.history_user_id, latest.history_change_reason) == (
        operator.pk, "circuit closed: sandbox-a answers again")
    assert [a["outcome"] for a in confirmed(desk, 1_000)["provider_attempts"]] == ["accepted"]
    assert desk.balances()["customer"] == FUNDS - 2_000
