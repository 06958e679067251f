"""`bootstrap_tenant` and `seed_demo`: what they create, what they refuse, and that reruns reuse."""

import io
import json
import re
import subprocess

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from ledger.models import Account, LedgerEntry, LedgerTransaction
from tenants.models import ApiKey, Membership, Tenant
from tests.conftest import api_client
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return {"tenants": Tenant.objects.count(), "accounts": Account.objects.count(), "keys": ApiKey.objects.count(),
            "users": get_user_model().objects.count(), "memberships": Membership.objects.count(),
            "events": Event.objects.count(), "transactions": LedgerTransaction.objects.count(),
            "entries": LedgerEntry.objects.count()}


def bootstrap(*args) -> dict:
    out = io.StringIO()
    call_command("bootstrap_tenant", *args, stdout=out)
    return json.loads(out.getvalue())


# --- bootstrap_tenant ------------------------------------------------------------------------

def test_bootstrap_tenant_prints_the_tenant_and_a_working_key():
    # when
    result = bootstrap("shop", "--currency", "EUR")
    # then
    assert set(result) == {"tenant", "api_key"}
    assert re.fullmatch(r"tnt_[0-9A-Z]+", result["tenant"])
    assert re.fullmatch(r"zk_[A-Za-z0-9]{12}_[A-Za-z0-9]{32}", result["api_key"])
    tenant = Tenant.objects.get(pk=result["tenant"])
    assert tenant.slug == "shop"
    system = Account.objects.filter(tenant=tenant, is_system=True)
    assert sorted(system.values_list("account_type", "currency")) == [
        ("fees", "EUR"), ("payout", "EUR"), ("reserve", "EUR"), ("settlement", "EUR")]
    assert not Account.objects.filter(tenant=tenant, is_system=False).exists()
    key = ApiKey.objects.get(tenant=tenant)
    assert key.scope == ApiKey.SCOPE_WRITE and key.revoked_at is None
    # and: the key works, for this tenant only
    client = api_client(result["api_key"])
    listing = client.get("/v1/accounts")
    assert listing.status_code == 200
    assert {a["id"] for a in listing.json()["data"]} == set(system.values_list("id", flat=True))
    created = client.post("/v1/accounts", {"currency": "EUR", "account_type": "customer", "customer": "c1"},
                          format="json", HTTP_IDEMPOTENCY_KEY="bootstrap-check")
    assert created.status_code == 201
    assert Account.objects.get(pk=created.json()["id"]).tenant == tenant


def test_bootstrap_tenant_defaults_to_usd_and_takes_a_name():
    # when
    result = bootstrap("usd-shop", "--name", "USD Shop")
    # then
    tenant = Tenant.objects.get(pk=result["tenant"])
    assert tenant.name == "USD Shop"
    assert set(Account.objects.filter(tenant=tenant).values_list("currency", flat=True)) == {"USD"}


def test_bootstrap_tenant_refuses_an_existing_slug_and_creates_nothing():
    # given
    bootstrap("shop", "--currency", "EUR")
    before = counts()
    # when / then
    with pytest.raises(CommandError, match="already exists"):
        call_command("bootstrap_tenant", "shop", "--currency", "USD", stdout=io.StringIO())
    assert counts() == before


@pytest.mark.parametrize("currency", ["XYZ", "eur", "EURO", "", "XAU"])
def test_bootstrap_tenant_refuses_a_bad_currency_and_creates_nothing(currency):
    # given
    before = counts()
    # when / then
    with pytest.raises(CommandError, match="currency"):
        call_command("bootstrap_tenant", "shop", "--currency", currency, stdout=io.StringIO())
    assert counts() == before
    assert not Tenant.objects.filter(slug="shop").exists()


@pytest.mark.parametrize("slug", ["bad slug", "shop!", "", "ünïcode", "a" * 64])
def test_bootstrap_tenant_refuses_a_bad_slug_and_creates_nothing(slug):
    # given
    before = counts()
    # when / then
    with pytest.raises(CommandError):
        call_command("bootstrap_tenant", slug, "--currency", "EUR", stdout=io.StringIO())
    assert counts() == before


def test_bootstrap_tenant_refuses_a_too_long_name_and_creates_nothing():
    # given
    before = counts()
    # when / then
    with pytest.raises(CommandError):
        call_command("bootstrap_tenant", "shop", "--name", "n" * 201, stdout=io.StringIO())
    assert counts() == before


# --- seed_demo -------------------------------------------------------------------------------

@pytest.fixture
def demo_key_file(tmp_path, monkeypatch):
    path = tmp_path / "var" / "demo-api-key"
    monkeypatch.setattr("backoffice.management.commands.seed_demo.DEMO_KEY_FILE", path)
    return path


def seed() -> tuple[str, str]:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    (raw_key,) = re.findall(r"^export KEY=(zk_\S+)", text, re.M)
    return text, raw_key


def test_seed_demo_creates_the_demo_tenant_logins_accounts_and_key(demo_key_file):
    # when
    text, raw_key = seed()
    # then
    demo = Tenant.objects.get(slug="demo")
    assert demo_key_file.read_text().strip() == raw_key
    assert oct(demo_key_file.stat().st_mode & 0o777) == "0o600"
    roles = dict(Membership.objects.filter(tenant=demo).values_list("user__username", "role"))
    assert roles == {"demo-owner": "owner", "demo-operator": "operator", "demo-viewer": "viewer",
                     "demo-compliance": "compliance"}
    currencies = set(Account.objects.filter(tenant=demo, is_system=False).values_list("currency", flat=True))
    assert currencies == {"USD", "EUR"}
    for currency in ("USD", "EUR"):
        assert set(Account.objects.filter(tenant=demo, is_system=True, currency=currency)
                   .values_list("account_type", flat=True)) == {"reserve", "settlement", "payout", "fees"}
    response = api_client(raw_key).get("/v1/accounts")
    assert response.status_code == 200
    assert "demo-operator" in text and "/admin/" in text


def test_seed_demo_twice_creates_nothing_new_and_prints_the_same_key(demo_key_file):
    # given
    _, first_key = seed()
    before = counts()
    ids_before = {
        "tenants": set(Tenant.objects.values_list("pk", flat=True)),
        "accounts": set(Account.objects.values_list("pk", flat=True)),
        "keys": set(ApiKey.objects.values_list("pk", flat=True)),
    }
    # when
    _, second_key = seed()
    # then
    assert second_key == first_key
    assert counts() == before
    assert before["transactions"] > 0  # the opening balances were posted once, not twice
    assert set(Tenant.objects.values_list("pk", flat=True)) == ids_before["tenants"]
    assert set(Account.objects.values_list("pk", flat=True)) == ids_before["accounts"]
    assert set(ApiKey.objects.values_list("pk", flat=True)) == ids_before["keys"]
    assert api_client(second_key).get("/v1/accounts").status_code == 200


def test_seed_demo_issues_a_new_key_when_the_kept_one_was_revoked(demo_key_file):
    # given
    _, first_key = seed()
    ApiKey.objects.filter(tenant__slug="demo").update(revoked_at="2024-01-01T00:00:00Z")
    # when
    _, second_key = seed()
    # then
    assert second_key != first_key
    assert demo_key_file.read_text().strip() == second_key
    assert api_client(second_key).get("/v1/accounts").status_code == 200
    assert ApiKey.objects.filter(tenant__slug="demo", revoked_at__isnull=True).count() == 1


def test_demo_logins_log_in_with_the_demo_password(client, demo_key_file):
    # given
    seed()
    for role in ("owner", "operator", "viewer", "compliance"):
        user = get_user_model().objects.get(username=f"demo-{role}")
        # when
        wrong = client.login(username=user.username, password="not-the-password")
        logged_in = client.login(username=user.username, password=settings.ZENTRA_DEMO_PASSWORD)
        # then
        assert (logged_in, wrong) == (True, False), role
        assert user.is_staff and not user.is_superuser, role
        assert client.get(reverse("admin:ledger_account_changelist")).status_code == 200, role
        client.logout()


def test_demo_login_form_accepts_the_demo_password(client, demo_key_file):
    # given
    seed()
    # when
    response = client.post(reverse("admin:login"), {"username": "demo-operator",
                                                    "password": settings.ZENTRA_DEMO_PASSWORD,
                                                    "next": "/admin/"})
    # then
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


# --- demo_env ----------------------------------------------------------------------------------

def test_demo_env_prints_shell_lines_that_set_the_demos_key_and_accounts(demo_key_file):
    # given
    _, raw_key = seed()
    out = io.StringIO()
    # when
    call_command("demo_env", "--base-url", "http://127.0.0.1:8123/", stdout=out)
    shell = subprocess.run(["bash", "-c", out.getvalue() + '\necho "$ZENTRA $KEY $FUND $ALICE $BOB $SHOP"'],
                           capture_output=True, text=True, check=True)
    # then
    demo = Tenant.objects.get(slug="demo")
    ids = [Account.objects.get(tenant=demo, name=name).id
           for name in ("Funding USD", "Alice USD", "Bob USD", "Demo Shop USD")]
    assert shell.stdout.split() == ["http://127.0.0.1:8123", raw_key, *ids]
    assert "http://127.0.0.1:8123/admin/" in out.getvalue()


def test_demo_env_without_a_demo_says_how_to_make_one(demo_key_file):
    with pytest.raises(CommandError, match="make run"):
        call_command("demo_env", stdout=io.StringIO())
