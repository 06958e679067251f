"""Production settings. ZENTRA_REQUIRE_TLS=1: plain HTTP is redirected (the health check
excepted), HTTPS answers carry HSTS for a year, cookies are secure, and a proxy's
X-Forwarded-Proto is believed only when ZENTRA_PROXY_SSL_HEADER names it. Off by default. With
TLS and the second factor required and a real secret, `check --deploy` has nothing to report.
A Content-Security-Policy without 'unsafe-inline' is on every page, and the pages need none.

The settings are read from the environment when a process starts, so each mode runs in a
process of its own started with that environment."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from django.urls import reverse

from audit.actors import Actor
from ledger.services.postings import EntryInput
from ledger.services.transfers import ledger_transaction_post
from tests.readme.test_serve import production_env
from tests.readme.test_walkthrough import ROOT

pytestmark = pytest.mark.django_db

# Requests through the whole middleware stack in a process of its own; none writes a row.
REQUESTS = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client

def seen(response):
    return {"status": response.status_code, "location": response.get("Location"),
            "hsts": response.get("Strict-Transport-Security"), "csp": response.get("Content-Security-Policy")}

client = Client()
print(json.dumps({
    "plain": seen(client.get("/admin/")),
    "healthz": seen(client.get("/healthz")),
    "secure": seen(client.get("/admin/", secure=True)),
    "forwarded": seen(client.get("/admin/", HTTP_X_FORWARDED_PROTO="https")),
    "cookies_secure": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE],
}))
"""
HSTS = "max-age=31536000; includeSubDomains; preload"


def served(tmp_path, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", REQUESTS], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=production_env(tmp_path, DJANGO_SETTINGS_MODULE="zentra.settings",
                                             DJANGO_ALLOWED_HOSTS="testserver", **env))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_deploy(tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, env=production_env(tmp_path, **env))


def test_without_require_tls_plain_http_is_served_as_it_is(tmp_path):
    seen = served(tmp_path)
    assert seen["plain"]["status"] == 302 and seen["plain"]["location"].startswith("/admin/login/")
    assert seen["plain"]["hsts"] is None and seen["secure"]["hsts"] is None
    assert seen["cookies_secure"] == [False, False]
    assert "upgrade-insecure-requests" not in seen["plain"]["csp"]


def test_require_tls_redirects_plain_http_and_sends_hsts_but_not_for_the_health_check(tmp_path):
    seen = served(tmp_path, ZENTRA_REQUIRE_TLS="1")
    # plain HTTP goes to HTTPS, a forwarded header from no trusted proxy changes nothing
    assert (seen["plain"]["status"], seen["plain"]["location"]) == (301, "https://testserver/admin/")
    assert seen["forwarded"]["status"] == 301
    # the load balancer's probe is answered over plain HTTP
    assert seen["healthz"]["status"] == 200
    # HTTPS is served, with HSTS for a year (subdomains, preload) and secure cookies only
    assert seen["secure"]["status"] == 302 and seen["secure"]["hsts"] == HSTS
    assert seen["cookies_secure"] == [True, True]
    assert "upgrade-insecure-requests" in seen["secure"]["csp"]


def test_behind_a_tls_proxy_its_forwarded_proto_is_believed_when_named(tmp_path):
    seen = served(tmp_path, ZENTRA_REQUIRE_TLS="1", ZENTRA_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert seen["forwarded"]["status"] == 302 and seen["forwarded"]["hsts"] == HSTS
    assert seen["plain"]["status"] == 301


def test_check_deploy_reports_nothing_in_production_mode_and_names_what_is_missing_otherwise(tmp_path):
    # when
    production = check_deploy(tmp_path, DJANGO_DEBUG="0", ZENTRA_REQUIRE_TLS="1", ZENTRA_REQUIRE_OTP="1")
    loose = check_deploy(tmp_path, DJANGO_DEBUG="0")
    # then
    assert production.returncode == 0, production.stdout + production.stderr
    assert "System check identified no issues" in production.stdout
    assert loose.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016", "zentra.W001"):
        assert warning in loose.stderr + loose.stdout, warning


# --- Content-Security-Policy --------------------------------------------------------------

INLINE_STYLE = re.compile(r"<[^>]+\sstyle=", re.I)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)(?![^>]*\snonce=)[^>]*>", re.I)


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_every_page_carries_a_policy_without_unsafe_inline_and_needs_none(client, tenant_a, make_account):
    funding = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)["id"]
    account = make_account()["id"]
    posted = ledger_transaction_post(tenant=tenant_a.tenant, actor=Actor.system("tests"),
                                     entries=[EntryInput(funding, "debit", 500), EntryInput(account, "credit", 500)])
    client.force_login(tenant_a.member("operator"))
    pages = {url: client.get(url) for url in (
        reverse("admin:index"), reverse("admin:ledger_account_changelist"),
        reverse("admin:ledger_account_change", args=[account]), reverse("admin:trace", args=[posted.id]),
        "/admin/two-factor/")}
    # (the pages that had inline styles before the policy: the statement, a posting's entries)
    assert 'class="zwide"' in pages[reverse("admin:ledger_account_change", args=[account])].content.decode()
    assert 'class="zcol40"' in pages[reverse("admin:trace", args=[posted.id])].content.decode()
    client.logout()
    pages[reverse("admin:login")] = client.get(reverse("admin:login"))
    for url, response in pages.items():
        assert response.status_code == 200, url
        directives = policy(response)
        assert directives["default-src"] == ["'self'"] and directives["frame-ancestors"] == ["'none'"], url
        assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"], url
        html = response.content.decode()
        assert not INLINE_STYLE.search(html), (url, INLINE_STYLE.search(html))
        assert not INLINE_SCRIPT.search(html), (url, INLINE_SCRIPT.search(html))


def test_swagger_ui_runs_its_start_up_script_under_the_nonce_of_its_response(client):
    response = client.get("/v1/docs")
    directives = policy(response)
    nonce = directives["script-src"][1].removeprefix("'nonce-").removesuffix("'")
    assert directives["script-src"] == ["'self'", f"'nonce-{nonce}'"] == directives["style-src"]
    html = response.content.decode()
    assert html.count(f'nonce="{nonce}"') == 2 and "SwaggerUIBundle(" in html
    assert not INLINE_SCRIPT.search(html) and "unsafe-inline" not in response["Content-Security-Policy"]
    assert client.get("/v1/docs")["Content-Security-Policy"] != response["Content-Security-Policy"]
