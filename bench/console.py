"""The operator console at size: the demo database (`seed_demo`) grown to 1,000,000 ledger
transactions, 2,000,000 entries and 1,000,000 request records in the demo tenant, then the
pages an operator or compliance reviewer opens, rendered in-process by Django (the whole
request: middleware, session, permission checks, queries, templates) and timed per request.

The story measured for the trace is a real one, made through the services: a payment that
settled, then payouts from the merchant's account until the trace holds at least 50 events,
each with a webhook delivery to the demo's receiver.

Run alone: `python bench/console.py` (its own throwaway database); `make bench` runs it too.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from common import configure_django, median_ms, recreate_database, timed

REQUESTS = int(os.environ.get("ZENTRA_BENCH_CONSOLE_ROWS", "1000000"))
STORY_EVENTS = 50
REPEAT = int(os.environ.get("ZENTRA_BENCH_CONSOLE_REPEAT", "30"))


def seed_demo() -> str:
    """The demo of `make run`, with its API key kept out of the developer's var/."""
    from django.core.management import call_command

    key_file = Path(tempfile.mkdtemp(prefix="zentra-bench-")) / "demo-api-key"
    call_command("seed_demo", key_file=key_file, stdout=open(os.devnull, "w"))
    return key_file.read_text().strip()


def seed_request_records(tenant_id: str, rows: int) -> None:
    """`rows` request records over the last ~12 days, one per second, in one statement."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO audit_requestrecord (created_at, request_id, tenant_id, actor, method, path, status,
                                             idempotency_key, idempotent_replay, duration_ms)
            SELECT now() - (%(n)s - k) * interval '1 second', 'req_bench' || k, %(tenant)s, 'api_key:bench',
                   CASE WHEN k %% 3 = 0 THEN 'POST' ELSE 'GET' END,
                   CASE WHEN k %% 3 = 0 THEN '/v1/transactions' ELSE '/v1/accounts' END,
                   CASE WHEN k %% 50 = 0 THEN 422 ELSE 200 END,
                   CASE WHEN k %% 3 = 0 THEN 'bench-' || k ELSE '' END, false, (k %% 40) + 1
            FROM generate_series(1, %(n)s) AS k""", {"n": rows, "tenant": tenant_id})
        cursor.execute("ANALYZE audit_requestrecord")


def story(tenant) -> tuple[str, int]:
    """A settled payment, then payouts from its merchant until its trace tells >= 50 events."""
    from audit.actors import Actor
    from backoffice.selectors.trace import trace_of
    from ledger.models import Account
    from payments.models import PaymentIntent, Provider
    from payments.services.configuration import provider_update
    from payments.services.intents import payment_intent_confirm, payment_intent_create
    from payments.services.payouts import payout_create
    from payments.services.sandbox import sandbox_payouts_due, sandbox_settle_due
    from tenants.selectors import Scope

    actor = Actor.system("bench")
    for provider in Provider.objects.filter(tenant=tenant):
        provider_update(tenant=tenant, provider_id=provider.id, actor=actor, reason="bench: settle at once",
                        settle_delay_seconds=0)
    source = Account.objects.get(tenant=tenant, name="Alice USD")
    shop = Account.objects.get(tenant=tenant, name="Demo Shop USD")
    intent = payment_intent_create(tenant=tenant, amount=500_00, currency="USD", source_account_id=source.id,
                                   destination_account_id=shop.id, actor=actor)
    payment_intent_confirm(tenant=tenant, intent_id=intent.id, actor=actor)
    sandbox_settle_due()
    assert PaymentIntent.objects.get(pk=intent.id).status == PaymentIntent.SUCCEEDED
    scope = Scope.of_tenant(tenant.id, actor)

    def events() -> int:
        return sum(1 for item in trace_of(scope, intent.id)["items"] if item["kind"] == "event")

    while events() < STORY_EVENTS:
        payout_create(tenant=tenant, account_id=shop.id, amount=5_00, actor=actor)
        sandbox_payouts_due()
    return intent.id, events()


def measure(api_key: str, intent_id: str, big_entries: int) -> list[tuple[str, str, float, float]]:
    """(page, login, median ms, slowest ms) for each page, REPEAT requests after a warm-up."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from ledger.models import Account

    big = Account.objects.filter(name="console").values_list("id", flat=True).get()
    users = get_user_model().objects
    pages = [
        ("dashboard (admin index)", "demo-operator", "/admin/"),
        ("ledger entries list", "demo-operator", "/admin/ledger/ledgerentry/"),
        ("ledger transactions list", "demo-operator", "/admin/ledger/ledgertransaction/"),
        ("request records list", "demo-compliance", "/admin/audit/requestrecord/"),
        (f"account page, {big_entries:,}-entry statement", "demo-operator", f"/admin/ledger/account/{big}/change/"),
        (f"trace of a payment, {STORY_EVENTS}+ events (admin)", "demo-operator", f"/admin/trace/{intent_id}/"),
        (f"trace of a payment, {STORY_EVENTS}+ events (GET /v1/trace)", "api key", f"/v1/trace/{intent_id}"),
    ]
    results = []
    for name, login, path in pages:
        client = Client(HTTP_HOST="127.0.0.1")
        headers = {}
        if login == "api key":
            headers = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}
        else:
            client.force_login(users.get(username=login))

        def get(path=path, client=client, headers=headers):
            response = client.get(path, **headers)
            assert response.status_code == 200, (path, response.status_code)
            response.content  # noqa: B018 (rendered in full)

        get()
        samples = timed(get, REPEAT)
        results.append((name, login, median_ms(samples), max(samples) * 1000))
    return results


def run(big_entries: int = REQUESTS) -> tuple[list[tuple[str, str, float, float]], int, dict]:
    import reads

    from tenants.models import Tenant

    api_key = seed_demo()
    tenant = Tenant.objects.get(slug="demo")
    reads.seed_account(tenant, big_entries, "console")
    seed_request_records(tenant.id, big_entries)
    intent_id, events = story(tenant)
    from audit.models import RequestRecord
    from ledger.models import LedgerEntry, LedgerTransaction

    sizes = {"transactions": LedgerTransaction.objects.filter(tenant=tenant).count(),
             "entries": LedgerEntry.objects.filter(tenant=tenant).count(),
             "request records": RequestRecord.objects.filter(tenant_id=tenant.id).count()}
    return measure(api_key, intent_id, big_entries), events, sizes


def report(out, results, events: int, sizes: dict) -> None:
    out(f"## Operator console at size (demo tenant: {sizes['transactions']:,} transactions, "
        f"{sizes['entries']:,} entries, {sizes['request records']:,} request records; "
        f"trace story: {events} events)")
    out("| page | login | median ms | slowest ms | target |")
    out("|---|---|---:|---:|---|")
    for name, login, median, slowest in results:
        target = "< 300 ms" if name.startswith("trace") else "< 500 ms"
        out(f"| {name} | {login} | {median:.0f} | {slowest:.0f} | {target} |")


def main() -> int:
    recreate_database()
    configure_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results, events, sizes = run()
    report(print, results, events, sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
