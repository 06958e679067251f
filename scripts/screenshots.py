"""`make screenshots`: the operator guide's pictures, taken from the demo in Chromium.

Seeds the demo (`seed_demo`, the same as `make run`) into a throwaway database
(zentra_screenshots, dropped afterwards), lets the webhook worker make one pass (the demo's
receiver is down, so the first attempts fail, as they would), serves it with runserver on a
free port, and signs in as each demo login in Debian's Chromium at 1400 px to photograph the
pages docs/operator-guide.md describes. Writes docs/img/*.png.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
DATABASE = "zentra_screenshots"
PASSWORD = "zentra-demo"
WIDTH, HEIGHT = 1400, 860
TALLEST = 1800  # a long page is cut here: the guide shows its beginning


def database_url() -> str:
    base = urlparse(os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/zentra"))
    return urlunparse(base._replace(path="/" + DATABASE))


def recreate_database(url: str, *, create: bool = True) -> None:
    import psycopg

    parsed = urlparse(url)
    with psycopg.connect(host=parsed.hostname or "127.0.0.1", port=parsed.port or 5432,
                         user=parsed.username or "root", password=parsed.password, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(base_url: str) -> dict[str, str]:
    """The demo, one relay pass, and the ids the pictures need."""
    import django

    django.setup()
    from django.core.management import call_command

    from ledger.models import Account, ReconciliationBreak, ReconciliationRun
    from payments.models import PaymentIntent, SettlementReport
    from webhooks.models import WebhookEndpoint
    from webhooks.services.delivery import relay_once

    call_command("migrate", verbosity=0)
    key_file = Path(tempfile.mkdtemp(prefix="zentra-shots-")) / "demo-api-key"
    call_command("seed_demo", base_url=base_url, key_file=key_file, stdout=open(os.devnull, "w"))
    relay_once()
    demo = {"tenant__slug": "demo"}
    return {
        # the demo's first payment (the others are the morning's settlement report)
        "payment": PaymentIntent.objects.get(**demo, status="succeeded", amount=4200).id,
        "account": Account.objects.get(**demo, name="Alice USD").id,
        "reserve": Account.objects.get(**demo, currency="USD", account_type="reserve", is_system=True).id,
        "endpoint": WebhookEndpoint.objects.filter(**demo, status="enabled").order_by("created_at").first().id,
        "run": ReconciliationRun.objects.filter(**demo, trigger="demo").order_by("-started_at").first().id,
        "report": SettlementReport.objects.filter(**demo).order_by("-created_at").first().id,
        "break": ReconciliationBreak.objects.get(**demo, kind="amount_mismatch").id,
    }


def serve(port: int, env: dict[str, str]) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2)
            return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("runserver did not answer within 30 s")


def photograph(base_url: str, ids: dict[str, str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from tests.browser.chromium import launch
    from tests.browser.chromium import signed_in as signed_in_as

    shots: list[Path] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)

        def signed_in(username: str):
            return signed_in_as(browser, base_url, username, PASSWORD, viewport={"width": WIDTH, "height": HEIGHT})

        def shot(page, name: str, path: str | None = None, *, full: bool = False) -> None:
            if path is not None:
                page.goto(base_url + path)
            page.wait_for_load_state("networkidle")
            target = OUT / f"{name}.png"
            height = min(TALLEST, page.evaluate("document.documentElement.scrollHeight")) if full else HEIGHT
            page.screenshot(path=str(target), full_page=full, clip={"x": 0, "y": 0, "width": WIDTH, "height": height})
            shots.append(target)

        operator = signed_in("demo-operator")
        shot(operator, "dashboard-operator")
        shot(operator, "trace-payment", f"/admin/trace/{ids['payment']}/", full=True)
        shot(operator, "payment-intent", f"/admin/payments/paymentintent/{ids['payment']}/change/", full=True)
        shot(operator, "review-queue", "/admin/payments/paymentintent/?status__exact=requires_review")
        shot(operator, "account", f"/admin/ledger/account/{ids['account']}/change/", full=True)
        shot(operator, "account-shards", f"/admin/ledger/account/{ids['reserve']}/change/", full=True)
        shot(operator, "holds-expiring", "/admin/ledger/hold/?attention=expiring_day")
        shot(operator, "endpoint", f"/admin/webhooks/webhookendpoint/{ids['endpoint']}/change/", full=True)
        shot(operator, "reconciliation-run", f"/admin/ledger/reconciliationrun/{ids['run']}/change/", full=True)
        shot(operator, "settlement-report", f"/admin/payments/settlementreport/{ids['report']}/change/", full=True)
        shot(operator, "break-resolved", f"/admin/ledger/reconciliationbreak/{ids['break']}/change/", full=True)
        shot(operator, "approvals", "/admin/audit/approval/")
        shot(signed_in("demo-compliance"), "dashboard-compliance")
        compliance = signed_in("demo-compliance")
        shot(compliance, "access-denials", "/admin/audit/accessdenial/")
        shot(signed_in("demo-owner"), "dashboard-owner")
        viewer = signed_in("demo-viewer")
        shot(viewer, "refused", "/admin/ledger/account/add/")
        browser.close()
    return shots


def main() -> int:
    url = database_url()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "1", "ZENTRA_DEMO_PASSWORD": PASSWORD,
           "DJANGO_SETTINGS_MODULE": "zentra.settings", "DJANGO_LOG_LEVEL": "WARNING",
           # as in `make run`: the demo's receiver is local, so its attempts fail as "no answer"
           "ZENTRA_WEBHOOK_ALLOW_PRIVATE": "1"}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    recreate_database(url)
    ids = seed(base_url)
    OUT.mkdir(parents=True, exist_ok=True)
    server = serve(port, env)
    try:
        shots = photograph(base_url, ids)
    finally:
        server.terminate()
        server.wait(timeout=10)
        from django.db import connections

        connections.close_all()
        recreate_database(url, create=False)
    for target in shots:
        print(f"{target.relative_to(ROOT)}  {target.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
