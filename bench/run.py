"""`make bench`: every benchmark in one run, ratios measured side by side.

Uses a throwaway database (zentra_bench by default, recreated each run), never the
application's own. Prints a table and writes it to bench/results/latest.md.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from common import configure_django, recreate_database

SECONDS = float(os.environ.get("ZENTRA_BENCH_SECONDS", "8"))
BIG = int(os.environ.get("ZENTRA_BENCH_BIG_ACCOUNT", "1000000"))
DELIVERIES = int(os.environ.get("ZENTRA_BENCH_DELIVERIES", "2000"))
EXPIRED_HOLDS = int(os.environ.get("ZENTRA_BENCH_EXPIRED_HOLDS", "100000"))


def main() -> int:
    recreate_database()
    configure_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import console
    import holds
    import http_api
    import intents
    import postings
    import reads
    import reconciliation
    import webhook_delivery as webhook_bench

    from audit.actors import Actor
    from backoffice.services.bootstrap import tenant_bootstrap

    tenant, raw_key = tenant_bootstrap(slug="bench", name="Bench", currency="USD", actor=Actor.system("bench"))
    lines = [f"# Zentra benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"{SECONDS:.0f} s per measurement", ""]

    def out(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    out("## Postings per second (service vs raw SQL, same database and triggers)")
    out("| processes | service | raw SQL | service/raw |")
    out("|---:|---:|---:|---:|")
    for row in postings.run(tenant, seconds=SECONDS):
        out(f"| {row['processes']} | {row['service']:.0f} | {row['raw']:.0f} | {row['ratio']:.2f} |")

    out("")
    out("## Postings per second through POST /v1/transactions (gunicorn as configured, 4 clients)")
    accounts = postings.make_accounts(tenant, "http")
    raw_accounts = postings.make_accounts(tenant, "http-raw")
    api = http_api.run(raw_key, accounts, clients=4, seconds=SECONDS)
    raw = postings.rate(postings._raw_worker, tenant.id, raw_accounts, 4, SECONDS)
    out("| API | raw SQL (4 processes) | API/raw |")
    out("|---:|---:|---:|")
    out(f"| {api:.0f} | {raw:.0f} | {api / raw:.2f} |")

    out("")
    out(f"## Read latency, median ms (1,000 vs {BIG:,} entries)")
    small, small_start = reads.seed_account(tenant, 1000, "small")
    big, big_start = reads.seed_account(tenant, BIG, "big")
    small_ms = reads.measure(small, small_start, 1000)
    big_ms = reads.measure(big, big_start, BIG)
    out(f"| read | 1,000 entries | {BIG:,} entries | big/small |")
    out("|---|---:|---:|---:|")
    for name in ("balance", "as_of", "statement"):
        out(f"| {name} | {small_ms[name]:.3f} | {big_ms[name]:.3f} | {big_ms[name] / small_ms[name]:.2f} |")

    out("")
    out("## Holds through the services (each worker: place, then capture or release, on its own account)")
    out("| processes | place/s | capture/s | release/s | place+resolve cycles/s | raw postings/s | cycles/raw |")
    out("|---:|---:|---:|---:|---:|---:|---:|")
    for row in holds.run(tenant, seconds=SECONDS):
        out(f"| {row['processes']} | {row['place']:.0f} | {row['capture']:.0f} | {row['release']:.0f} | "
            f"{row['cycles_per_second']:.0f} | {row['raw']:.0f} | {row['cycles_per_second'] / row['raw']:.2f} |")

    out("")
    out(f"## Expiry job releasing {EXPIRED_HOLDS:,} expired holds")
    holds.seed_expired_holds(tenant, EXPIRED_HOLDS)
    out("| job processes | holds expired | seconds | expiries/s |")
    out("|---:|---:|---:|---:|")
    expired, elapsed = holds.expiry_rate(2)
    out(f"| 2 | {expired:,} | {elapsed:.1f} | {expired / elapsed:.0f} |")

    out("")
    out("## Payment intents confirmed and settled through the services (sandbox, zero delay)")
    out("| processes | intents/s | raw postings/s | intents/raw |")
    out("|---:|---:|---:|---:|")
    for row in intents.run(tenant, seconds=SECONDS):
        out(f"| {row['processes']} | {row['intents']:.0f} | {row['raw']:.0f} | {row['ratio']:.2f} |")

    out("")
    out("## Webhooks")
    cost = webhook_bench.outbox_cost(SECONDS)
    out("| postings/s, tenant without endpoints | with 3 endpoints | with/without |")
    out("|---:|---:|---:|")
    out(f"| {cost['without']:.0f} | {cost['with_three']:.0f} | {cost['with_three'] / cost['without']:.2f} |")
    delivered, elapsed = webhook_bench.delivery_rate(DELIVERIES)
    out("")
    out("| deliveries (1 worker, 2 processes, local receiver) | seconds | deliveries/s |")
    out("|---:|---:|---:|")
    out(f"| {delivered:,} | {elapsed:.1f} | {delivered / elapsed:.0f} |")

    out("")
    reconciliation.report(out, reconciliation.run(seconds=SECONDS))

    out("")
    console_results, story_events, sizes = console.run(BIG)
    console.report(out, console_results, story_events, sizes)

    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.md").write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {results / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
