"""The dashboard per role, on the demo: every tile has something real behind it, links to the
list behind it, and shows only the user's tenants."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(tmp_path):
    call_command("seed_demo", "--key-file", str(tmp_path / "demo-api-key"), stdout=open("/dev/null", "w"))


def tiles(client, username: str) -> dict[str, dict]:
    client.login(username=username, password="zentra-demo")
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return {tile.title: {"value": tile.value, "url": tile.url, "rows": tile.rows, "links": tile.links}
            for _, section in response.context["dashboard_sections"] for tile in section}


def test_an_operator_sees_what_waits_with_links_to_the_lists_behind(client, demo):
    shown = tiles(client, "demo-operator")
    assert shown["Review queue"]["value"] == "1"
    assert shown["Holds expiring within 24 h"]["value"] == "1"
    assert shown["Webhooks"]["value"] == "1 disabled"
    assert shown["Open circuits"]["value"] == "1" and "bank_transfer" in shown["Open circuits"]["rows"][0][0]
    assert shown["Ledger verification"]["value"] == "2 breaks"
    assert "Access denials, last 24 h" not in shown and "API keys by last use" not in shown
    # every tile opens the list behind it, filtered, and that list shows the same items
    queue = client.get(shown["Review queue"]["url"])
    assert [i.status for i in queue.context["cl"].result_list] == ["requires_review"]
    circuits = client.get(shown["Open circuits"]["url"])
    assert len(circuits.context["cl"].result_list) == 1
    disabled = client.get(shown["Webhooks"]["url"])
    assert [e.status for e in disabled.context["cl"].result_list] == ["disabled"]
    expiring = client.get(shown["Holds expiring within 24 h"]["url"])
    assert len(expiring.context["cl"].result_list) == 1


def test_compliance_sees_refusals_and_changes_owners_see_keys_and_members(client, demo):
    compliance = tiles(client, "demo-compliance")
    assert compliance["Access denials, last 24 h"]["value"] == "1"
    assert any("another tenant" in label for label, _ in compliance["Access denials, last 24 h"]["rows"])
    assert compliance["Recent changes"]["rows"]
    # every change names who made it (the route whose circuit a payment opened included)
    assert all(" by " in what and " by :" not in what for _, what in compliance["Recent changes"]["rows"])
    denials = client.get(compliance["Access denials, last 24 h"]["url"])
    assert len(denials.context["cl"].result_list) == 1
    assert "Review queue" not in compliance
    client.logout()
    owner = tiles(client, "demo-owner")
    assert {"Review queue", "Access denials, last 24 h", "API keys by last use", "Members"} <= set(owner)
    assert {label.split()[1] for label, _ in owner["Members"]["rows"]} == {
        "demo-owner", "demo-operator", "demo-viewer", "demo-compliance"}


def test_the_dashboard_of_another_tenant_shows_none_of_the_demo(client, demo):
    shown = tiles(client, "acme-operator")
    assert shown["Review queue"]["value"] == "0" and shown["Open circuits"]["value"] == "0"
    assert shown["Webhooks"]["value"] == "0 disabled"


def test_charts_are_inline_svg_with_no_external_request(client, demo):
    client.login(username="demo-viewer", password="zentra-demo")
    page = client.get(reverse("admin:index")).content.decode()
    assert page.count("<svg") >= 3 and "Postings per hour" in page and "Volume per day, USD" in page
    assert "http://" not in page.split("<svg", 1)[1].split("</svg>", 1)[0].replace("http://www.w3.org/2000/svg", "")
