"""Shared set-up of the benchmarks: a throwaway database, Django pointed at it, timing helpers."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASE_URL = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/zentra")
_parsed = urlparse(BASE_URL)
BENCH_DATABASE = os.environ.get("ZENTRA_BENCH_DATABASE", "zentra_bench")
BENCH_URL = urlunparse(_parsed._replace(path="/" + BENCH_DATABASE))


def configure_django() -> None:
    os.environ["DATABASE_URL"] = BENCH_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zentra.settings")
    # DEBUG off, as in production: with DEBUG on Django also records every query it runs.
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-not-for-production")
    # The ledger's chain key and the signing key of checkpoints, for the throwaway database only.
    os.environ.setdefault("ZENTRA_LEDGER_KEY", "bench-only-ledger-key-not-for-production")
    os.environ.setdefault("ZENTRA_SIGNING_KEY", "YmVuY2gtb25seS1zaWduaW5nLWtleS0zMi1ieXRlcyE=")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def psycopg_params() -> dict:
    return {"dbname": BENCH_DATABASE, "user": _parsed.username or "root", "host": _parsed.hostname or "127.0.0.1",
            "port": _parsed.port or 5432, "password": _parsed.password}


def recreate_database() -> None:
    import psycopg

    params = {**psycopg_params(), "dbname": "postgres"}
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')


def fresh_bench_tenant():
    """A recreated throwaway database, migrated, with one bootstrapped tenant: (tenant, raw API
    key). The start of every bench command that runs alone."""
    recreate_database()
    configure_django()
    from django.core.management import call_command

    from audit.actors import Actor
    from backoffice.services.bootstrap import tenant_bootstrap

    call_command("migrate", verbosity=0)
    return tenant_bootstrap(slug="bench", name="Bench", currency="USD", actor=Actor.system("bench"))


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples
