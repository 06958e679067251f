"""The operator console in Chromium, as each role uses it, on the seeded demo."""

from __future__ import annotations

import re

import pytest

from audit.models import AccessDenial
from ledger.models import Account
from payments.models import PaymentIntent
from webhooks.models import WebhookEndpoint
from webhooks.services.delivery import relay_once

pytestmark = pytest.mark.django_db(transaction=True)

TILES = {
    "demo-operator": ["Review queue", "Open circuits", "Ledger verification"],
    "demo-viewer": ["Postings per hour, last 7 days"],
    "demo-compliance": ["Access denials, last 24 h", "Recent changes"],
    "demo-owner": ["Review queue", "Access denials, last 24 h", "API keys by last use", "Members"],
}


@pytest.mark.parametrize("username", sorted(TILES))
def test_each_role_signs_in_to_its_dashboard(login, username):
    page = login(username)
    assert page.locator("#content h1").inner_text() == "Dashboard"
    for title in TILES[username]:
        assert page.get_by_text(title, exact=True).first.is_visible(), title
    if username == "demo-viewer":
        assert page.get_by_text("Review queue", exact=True).count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 1404  # nothing cut off at 1400 px


def test_an_operator_follows_a_payment_from_the_dashboard_to_the_merchant_credit_and_the_webhook(login):
    relay_once()  # the worker's sweep: the demo's receiver is down, so each delivery's first attempt fails
    # the demo's first payment: Alice pays the shop 42.00 (the others are the morning's report)
    succeeded = PaymentIntent.objects.get(tenant__slug="demo", status="succeeded", amount=4200)
    page = login("demo-operator")
    page.get_by_role("link", name="Payment intents").first.click()
    page.get_by_role("link", name="Succeeded").click()
    page.get_by_role("link", name=succeeded.id).click()
    page.get_by_role("link", name="Trace", exact=True).click()
    assert page.url.endswith(f"/admin/trace/{succeeded.id}/")
    story = page.locator("#trace")
    settlement = story.locator("tr.kind-transaction", has_text="settlement: ")
    assert settlement.get_by_role("link", name="Demo Shop USD").is_visible()
    assert "credit Demo Shop USD 42.00 USD" in settlement.inner_text()
    assert story.locator("tr.kind-delivery_attempt").count() >= 1
    # every link on the trace opens
    hrefs = sorted(set(page.eval_on_selector_all("#trace a", "els => els.map(e => e.getAttribute('href'))")))
    assert len(hrefs) > 10
    for href in hrefs:
        assert page.request.get(page.url.split("/admin/")[0] + href).status == 200, href
    # and the merchant credit opens the merchant's account, with its statement
    settlement.get_by_role("link", name="Demo Shop USD").click()
    page.locator("#statement").wait_for()
    assert "Demo Shop USD" in page.locator("#content").inner_text()


def test_an_operator_freezes_an_account_with_a_reason_and_the_history_shows_it(login):
    bob = Account.objects.get(tenant__slug="demo", name="Bob USD")
    page = login("demo-operator")
    page.goto(page.url + "ledger/account/")
    page.locator(f"input[name=_selected_action][value='{bob.id}']").check()
    page.select_option("select[name=action]", "freeze")
    page.get_by_role("button", name="Go").click()
    page.fill("textarea[name=reason]", "chargeback investigation")
    page.get_by_role("button", name="Yes, freeze").click()
    page.get_by_text("Freeze: 1 done.").wait_for()  # the answer to the POST, once it has loaded
    assert Account.objects.get(pk=bob.id).status == "frozen"
    page.goto(page.url.split("/admin/")[0] + f"/admin/ledger/account/{bob.id}/history/")
    assert page.get_by_text("chargeback investigation").is_visible()


def test_a_viewers_forged_freeze_is_refused_and_compliance_finds_the_denial(login):
    alice = Account.objects.get(tenant__slug="demo", name="Alice USD")
    viewer = login("demo-viewer")
    viewer.goto(viewer.url + "ledger/account/")
    token = viewer.eval_on_selector("input[name=csrfmiddlewaretoken]", "e => e.value")
    forged = viewer.request.post(viewer.url, form={
        "csrfmiddlewaretoken": token, "action": "freeze", "_selected_action": alice.id, "confirm": "yes",
        "reason": "forged"}, headers={"Referer": viewer.url})
    assert forged.status == 403 and "Not allowed for your role" in forged.text()
    assert Account.objects.get(pk=alice.id).status == "active"
    denial = AccessDenial.objects.get(action="admin:freeze ledger.account")
    compliance = login("demo-compliance")
    compliance.get_by_role("link", name="Access denials").first.click()
    row = compliance.locator("#result_list tr", has_text="admin:freeze ledger.account")
    row.first.wait_for()
    assert row.count() == 1 and "demo-viewer" in row.inner_text()
    assert denial.target == alice.id


def test_an_owner_creates_an_endpoint_and_sees_its_secret_once(login, settings):
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True
    page = login("demo-owner")
    page.goto(page.url + "webhooks/webhookendpoint/add/")
    page.select_option("select[name=tenant]", label="demo")
    page.fill("input[name=url]", "http://127.0.0.1:9/finance")
    page.fill("input[name=event_types_text]", "payout.*")
    page.get_by_role("button", name="Save", exact=True).click()
    secret = page.locator("code.zsecret").inner_text()
    endpoint = WebhookEndpoint.objects.get(url="http://127.0.0.1:9/finance")
    assert re.fullmatch(r"whsec_\S+", secret) and secret == endpoint.secret
    page.goto(page.url.split("/admin/")[0] + f"/admin/webhooks/webhookendpoint/{endpoint.id}/change/")
    assert secret not in page.content()
