"""Settlement report matching at size: a provider's report of 100,000 lines received (parsed,
checked, stored) and matched against the ledger's records, timed separately, beside the raw
posting baseline measured in the same run: pgbench running ../shared/bench's raw posting script
at one connection (matching is one connection), on a throwaway database of its own.

A throwaway tenant holds the ledger's side: one SettlementRecord per settled charge, seeded in
one INSERT (this is a bench of matching, not of settling). The report is the provider's side of
the same movements, with deliberate faults whose outcome counts the bench asserts: some amounts
changed (amount_mismatch), some records left out (missing_in_report), some lines the ledger never
saw (missing_in_ledger). The services run as they do in the worker: the tenant's scope, and the
application role (row-level security applies), or the schema owner with ZENTRA_BENCH_RECON_ROLE=owner
(as `manage.py reconcile_report` runs).

Run alone: `make bench-reconciliation` (that is `python bench/reconciliation.py`, on its own
throwaway database); `make bench` runs it too.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import BENCH_DATABASE, ROOT, configure_django, psycopg_params, recreate_database

LINES = int(os.environ.get("ZENTRA_BENCH_RECON_LINES", "100000"))
MISMATCHES = int(os.environ.get("ZENTRA_BENCH_RECON_MISMATCHES", "50"))
MISSING = 30  # records of the period the report leaves out
EXTRA = 20  # lines naming a reference the ledger never saw
TARGET_SECONDS = 20.0
ROLE = os.environ.get("ZENTRA_BENCH_RECON_ROLE", "app")
SECONDS = float(os.environ.get("ZENTRA_BENCH_SECONDS", "8"))
BASELINE_DIR = Path(os.environ.get("ZENTRA_BENCH_BASELINE_DIR", ROOT.parent / "shared" / "bench"))


def _gross(k: int) -> int:
    return 100 + (k * 7919) % 1_000_000


def seed(slug: str = "bench-recon") -> tuple:
    """A tenant with LINES - EXTRA + MISSING settled charges of one day recorded, and that day's
    report of them with its faults: (tenant, provider, content, period start, end, expected)."""
    from django.db import connection

    from audit.actors import Actor
    from backoffice.services.bootstrap import tenant_bootstrap
    from payments.models import Provider
    from payments.services.settlement.parse import COLUMNS
    from payments.services.settlement.sandbox_report import charge_fee

    tenant, _ = tenant_bootstrap(slug=slug, name="Bench reconciliation", currency="USD",
                                 actor=Actor.system("bench"))
    provider = Provider.objects.get(tenant=tenant, name="sandbox-a")
    start = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    records = LINES - EXTRA + MISSING
    step = timedelta(days=1) / (records + EXTRA + 1)
    references = [f"bch_{k:07d}" for k in range(1, records + 1)]
    settled = [start + k * step for k in range(1, records + 1)]
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO payments_settlementrecord (tenant_id, provider_id, type, provider_reference, currency, gross,
                                                   settled_at, transaction_id)
            SELECT %s, %s, 'charge', reference, 'USD', gross, settled_at, ''
              FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[]) AS r(reference, gross, settled_at)""",
                       [tenant.id, provider.id, references, [_gross(k) for k in range(1, records + 1)], settled])
        cursor.execute("ANALYZE payments_settlementrecord")

    rng = random.Random(2026)
    faulty = rng.sample(range(records), MISSING + MISMATCHES)
    missing, changed = set(faulty[:MISSING]), set(faulty[MISSING:])
    extra_at = set(rng.sample(range(records), EXTRA))
    rows = []
    for index, reference in enumerate(references):
        if index in extra_at:
            rows.append((f"bch_extra_{index:07d}", 4_200, settled[index] - step / 2))
        if index in missing:
            continue
        gross = _gross(index + 1) + (100 if index in changed else 0)
        rows.append((reference, gross, settled[index]))
    out = [",".join(COLUMNS)]
    fees = 0
    for number, (reference, gross, booked_at) in enumerate(rows, 1):
        fee = charge_fee(gross)
        fees += fee
        out.append(f"{provider.name}-{number:07d},charge,{reference},USD,{gross},{fee},{gross - fee},"
                   f"{booked_at.isoformat().replace('+00:00', 'Z')}")
    content = ("\n".join(out) + "\n").encode()
    expected = {"lines": LINES, "matched": LINES - EXTRA - MISMATCHES, "fees_posted": fees,
                "breaks": {"amount_mismatch": MISMATCHES, "missing_in_ledger": EXTRA, "missing_in_report": MISSING}}
    assert len(rows) == LINES
    return tenant, provider, content, start, end, expected


@contextmanager
def _as_role(role: str):
    """The worker's connection (the application role: row-level security applies), or the owner's."""
    from django.conf import settings
    from django.db import connections

    if role != "app":
        yield
        return
    saved = {}
    for alias in ("default", "evidence"):
        connection = connections[alias]
        connection.close()
        saved[alias] = connection.settings_dict
        connection.settings_dict = {**saved[alias], "USER": settings.DATABASE_APP_ROLE,
                                    "PASSWORD": settings.DATABASE_APP_PASSWORD}
    try:
        yield
    finally:
        for alias, owner in saved.items():
            connections[alias].close()
            connections[alias].settings_dict = owner


def measure(tenant, provider, content: bytes, start, end, expected: dict, role: str = ROLE) -> dict:
    """Receive, then match, timed apart (each step of matching too); asserts the outcome."""
    from audit.actors import Actor
    from ledger.models import ReconciliationBreak
    from payments.services.settlement.reports import settlement_report_match, settlement_report_receive
    from zentra.db.scope import tenant_scope

    actor = Actor.system("bench")
    steps: list[tuple[str, float]] = []

    def progress(step: str, done: int, total: int) -> None:
        steps.append((step, time.perf_counter()))

    with _as_role(role), tenant_scope([tenant.id]):
        started = time.perf_counter()
        report = settlement_report_receive(tenant=tenant, provider_id=provider.id, content=content,
                                           period_start=start, period_end=end, actor=actor)
        received = time.perf_counter()
        report = settlement_report_match(tenant=tenant, report_id=report.id, actor=actor, progress=progress)
        finished = time.perf_counter()
        breaks = dict.fromkeys(expected["breaks"], 0)
        for kind in ReconciliationBreak.objects.filter(report_id=report.id).values_list("kind", flat=True):
            breaks[kind] = breaks.get(kind, 0) + 1
    found = {"lines": report.lines, "matched": report.matched, "fees_posted": report.fees_posted, "breaks": breaks}
    assert report.status == "matched", report.status
    assert found == expected, (found, expected)
    marks = [*steps, ("end", finished)]
    return {"lines": report.lines, "bytes": len(content), "receive": received - started, "match": finished - received,
            "steps": [(name, marks[i + 1][1] - at) for i, (name, at) in enumerate(marks[:-1])],
            "role": role, "report": report.id}


def pgbench_baseline(seconds: float, clients: int = 1) -> float | None:
    """Postings/s of ../shared/bench's raw posting script (pgbench), at `clients` connections, on a
    throwaway database of its own; None when pgbench or the script is not there."""
    import psycopg

    schema, script = BASELINE_DIR / "raw_ledger_schema.sql", BASELINE_DIR / "raw_ledger_posting.sql"
    if not (shutil.which("pgbench") and shutil.which("psql") and schema.exists() and script.exists()):
        return None
    params = psycopg_params()
    database = f"{BENCH_DATABASE}_pgbench"
    admin = {k: v for k, v in {**params, "dbname": "postgres"}.items() if v is not None}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    env = {**os.environ, "PGHOST": str(params["host"]), "PGPORT": str(params["port"]), "PGUSER": params["user"],
           "PGDATABASE": database}
    if params["password"]:
        env["PGPASSWORD"] = params["password"]
    try:
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-v", "naccts=100", "-f", str(schema)], env=env,
                       check=True, capture_output=True)
        result = subprocess.run(["pgbench", "-n", "-f", str(script), "-D", "naccts=100", "-c", str(clients),
                                 "-j", str(clients), "-T", str(max(1, round(seconds)))], env=env, check=True,
                                capture_output=True, text=True)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    for line in result.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(f"no tps in pgbench's output:\n{result.stdout}")


def run(seconds: float = SECONDS) -> dict:
    """On a throwaway tenant of its own; the baseline right after the measurement."""
    result = measure(*seed())
    result["pgbench"] = pgbench_baseline(seconds)
    return result


def report(out, result: dict) -> None:
    lines = result["lines"]
    total = result["receive"] + result["match"]
    out(f"## Settlement report matching ({lines:,} lines, {result['bytes'] / 2**20:.1f} MiB; "
        f"services as the {'application role' if result['role'] == 'app' else 'schema owner'})")
    out("| step | seconds | lines/s | raw postings/s (pgbench, 1 client) | lines/raw |")
    out("|---|---:|---:|---:|---:|")
    raw = result["pgbench"]
    for name, seconds in (("receive (parse, check, store)", result["receive"]), ("match", result["match"]),
                          ("receive + match", total)):
        rate = lines / seconds
        baseline = f"{raw:,.0f} | {rate / raw:.1f}" if raw else "n/a (no pgbench or script) | n/a"
        out(f"| {name} | {seconds:.2f} | {rate:,.0f} | {baseline} |")
    out("")
    out("| matching step | seconds |")
    out("|---|---:|")
    for name, seconds in result["steps"]:
        out(f"| {name} | {seconds:.2f} |")
    verdict = "met" if result["match"] < TARGET_SECONDS else "NOT met"
    out(f"\ntarget: {lines:,} lines matched in under {TARGET_SECONDS:.0f} s: {verdict} ({result['match']:.1f} s)")


def main() -> int:
    recreate_database()
    configure_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    report(print, run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
