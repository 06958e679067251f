"""The trace of any id, in the API and in the admin: the whole story in order, every id a link,
other tenants' ids refused with evidence, and a number of queries that does not grow with the
story."""

from __future__ import annotations

import re

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AccessDenial
from payments.services.sandbox import sandbox_payouts_due, sandbox_settle_due
from tests.payments.test_support import confirmed, open_desk
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def settled(tenant_a, settings):
    """A payment that settled and whose merchant was then paid out, with webhooks going out."""
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True
    desk = open_desk(tenant_a)
    assert tenant_a.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hooks"}).status_code == 201
    intent = confirmed(desk, 10_000)
    assert sandbox_settle_due() == 1
    payout = tenant_a.post("/v1/payouts", {"account": desk.merchant, "amount": 4_000}).json()
    assert sandbox_payouts_due() == 1
    return desk, intent, payout


def kinds(trace: dict) -> list[str]:
    return [item["kind"] for item in trace["items"]]


def test_the_trace_of_a_payment_follows_the_money_from_request_to_payout(tenant_a, settled):
    desk, intent, payout = settled
    # when
    response = tenant_a.get(f"/v1/trace/{intent['id']}")
    # then
    assert response.status_code == 200
    trace = response.json()
    assert trace["object"] == "trace" and trace["root"] == intent["id"]
    assert {"request", "transition", "policy_decision", "provider_attempt", "hold", "transaction", "event",
            "delivery_attempt", "history"} <= set(kinds(trace))
    ats = [item["at"] for item in trace["items"]]
    assert ats == sorted(ats, key=lambda at: at.replace("Z", ""))  # oldest first
    # the ledger flow: customer to reserve, reserve to settlement, settlement to merchant, the payout
    postings = [item["data"] for item in trace["items"] if item["kind"] == "transaction"]
    flow = [(p["kind"], sorted((e["direction"], e["account"]) for e in p["entries"])) for p in postings]
    assert flow == [
        ("hold", sorted([("debit", desk.customer), ("credit", desk.reserve)])),
        ("capture", sorted([("debit", desk.reserve), ("credit", desk.settlement)])),
        ("settlement", sorted([("debit", desk.settlement), ("credit", desk.merchant)])),
        ("payout", sorted([("debit", desk.merchant), ("credit", desk.payout)])),
    ]
    assert payout["id"] in {item["id"] for item in trace["items"]}
    # the request that created the intent is in it, by the key that made it
    create = next(i for i in trace["items"] if i["kind"] == "request" and i["data"]["path"] == "/v1/payment_intents")
    assert create["data"]["status"] == 201 and create["data"]["actor"].startswith("api_key:")


def test_every_kind_of_id_starts_a_trace_and_request_ids_find_what_they_made(tenant_a, settled):
    desk, intent, payout = settled
    story = tenant_a.get(f"/v1/trace/{intent['id']}").json()["items"]
    ids = {item["kind"]: item["id"] for item in story}
    for root in (intent["hold"], ids["transaction"], desk.customer, payout["id"], ids["event"],
                 ids["delivery_attempt"], ids["request"]):
        response = tenant_a.get(f"/v1/trace/{root}")
        assert response.status_code == 200, (root, response.json())
        assert response.json()["items"], root
    create = next(i["id"] for i in story if i["kind"] == "request" and i["data"]["path"] == "/v1/payment_intents")
    made = tenant_a.get(f"/v1/trace/{create}").json()
    assert intent["id"] in {item["id"] for item in made["items"]}


def test_another_tenants_id_is_404_with_an_access_denial_and_unknown_ids_are_404(tenant_a, tenant_b, settled):
    _, intent, _ = settled
    before = AccessDenial.objects.count()
    foreign = tenant_b.get(f"/v1/trace/{intent['id']}")
    assert foreign.status_code == 404 and foreign.json()["code"] == "not_found"
    denial = AccessDenial.objects.get(target=intent["id"])
    assert (denial.tenant_id, denial.target_tenant_id) == (tenant_b.tenant.id, tenant_a.tenant.id)
    assert AccessDenial.objects.count() == before + 1
    assert tenant_a.get("/v1/trace/pi_nothing").status_code == 404
    assert tenant_a.get("/v1/trace/bogus").status_code == 404
    assert AccessDenial.objects.count() == before + 1


def test_the_number_of_queries_does_not_grow_with_the_story(tenant_a, settled, settings):
    desk, intent, _ = settled

    def queries(root: str) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as default, CaptureQueriesContext(connections["evidence"]) as evidence:
            items = len(tenant_a.get(f"/v1/trace/{root}").json()["items"])
        return len(default) + len(evidence), items

    small_queries, small_items = queries(intent["id"])
    # given: the same story (a payment, then a payout), now told to five more endpoints: more
    # events, deliveries and attempts
    for n in range(5):
        WebhookEndpoint.objects.filter(pk=tenant_a.post("/v1/webhook_endpoints", {
            "url": f"http://127.0.0.1:9/more-{n}"}).json()["id"])
    bigger = confirmed(desk, 10_000)
    assert sandbox_settle_due() == 1
    assert tenant_a.post("/v1/payouts", {"account": desk.merchant, "amount": 4_000}).status_code == 201
    assert sandbox_payouts_due() == 1
    big_queries, big_items = queries(bigger["id"])
    assert big_items > small_items + 10
    assert big_queries == small_queries


def test_the_admin_trace_is_the_same_story_with_every_id_a_link(client, tenant_a, tenant_b, settled):
    desk, intent, _ = settled
    client.force_login(tenant_a.member("operator"))
    # from the search box of any page
    found = client.get(reverse("admin:trace-search"), {"id": intent["id"]})
    assert found.status_code == 302 and found["Location"] == reverse("admin:trace", args=[intent["id"]])
    page = client.get(found["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    api = tenant_a.get(f"/v1/trace/{intent['id']}").json()
    assert len(page.context["trace"]["items"]) == len(api["items"])
    for account in (desk.customer, desk.reserve, desk.settlement, desk.merchant):
        assert reverse("admin:ledger_account_change", args=[account]) in html
    linked = set(re.findall(r'href="/admin/[^"]+/((?:pi|hold|txn|evt|del|acct|po)_[0-9A-Z]+)/', html))
    shown = set(re.findall(r">((?:pi|hold|txn|evt|del|acct|po)_[0-9A-Z]{26})<", html))
    assert shown and shown <= linked
    # and the intent's own page links to it
    assert reverse("admin:trace", args=[intent["id"]]) in client.get(
        reverse("admin:payments_paymentintent_change", args=[intent["id"]])).content.decode()
    # another tenant's operator: the admin's own 404 page, and a denial
    client.force_login(tenant_b.member("operator"))
    refused = client.get(reverse("admin:trace", args=[intent["id"]]))
    assert refused.status_code == 404 and b"Not found" in refused.content and b"dashboard" in refused.content
    assert AccessDenial.objects.filter(target=intent["id"], target_tenant_id=tenant_a.tenant.id).exists()
