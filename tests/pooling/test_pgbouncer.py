"""The API tests, once more, through PgBouncer in transaction pooling (docs/security.md,
"PgBouncer"): consecutive transactions of one client land on different server connections, so
anything a session kept (a tenant context set outside a transaction, a prepared statement, a
held cursor, a role) would leak or vanish. Debian's pgbouncer, started here on a port of its
own; the machine's PostgreSQL stays as it is."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.readme.test_walkthrough import ROOT, free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
DATABASE = "zentra_pooled"  # the suite below makes test_zentra_pooled from it
BUDGET_SECONDS = 180


def pgbouncer_config(directory: Path, port: int) -> Path:
    owner = settings.DATABASES["default"]
    users = directory / "users.txt"
    users.write_text("".join(f'"{user}" ""\n' for user in {owner["USER"] or "root", settings.DATABASE_APP_ROLE}))
    config = directory / "pgbouncer.ini"
    config.write_text(f"""[databases]
* = host={owner['HOST'] or '127.0.0.1'} port={owner['PORT'] or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
pool_mode = transaction
default_pool_size = 10
max_client_conn = 400
ignore_startup_parameters = extra_float_digits,options
logfile = {directory / 'pgbouncer.log'}
pidfile = {directory / 'pgbouncer.pid'}
""")
    return config


def drop_database(name: str) -> None:
    owner = settings.DATABASES["default"]
    with psycopg.connect(host=owner["HOST"] or "127.0.0.1", port=owner["PORT"] or 5432, user=owner["USER"] or None,
                         dbname="postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.skipif(not Path(PGBOUNCER).exists(), reason="Debian's pgbouncer is not installed (make services)")
def test_the_api_suite_passes_through_pgbouncer_in_transaction_pooling():
    if os.environ.get("ZENTRA_INSIDE_POOLED_RUN"):
        pytest.skip("already the pooled run")
    # given: PgBouncer in transaction pooling (it refuses to run as root: as the postgres user,
    # in a directory that user can reach)
    tmp_path = Path(tempfile.mkdtemp(prefix="zentra-pgbouncer-"))
    tmp_path.chmod(0o777)
    port = free_port()
    config = pgbouncer_config(tmp_path, port)
    as_postgres = ["-u", "postgres"] if os.geteuid() == 0 else []
    subprocess.run([PGBOUNCER, "-d", *as_postgres, str(config)], check=True, cwd=tmp_path)
    drop_database(f"test_{DATABASE}")
    owner = settings.DATABASES["default"]
    env = {**os.environ, "ZENTRA_INSIDE_POOLED_RUN": "1", "DATABASE_TRANSACTION_POOLING": "1",
           "DATABASE_URL": f"postgres://{owner['USER'] or 'root'}@127.0.0.1:{port}/{DATABASE}",
           "DATABASE_APP_URL": f"postgres://{settings.DATABASE_APP_ROLE}@127.0.0.1:{port}/{DATABASE}"}
    try:
        # when: the API tests run through it (the database is created through it and kept, since
        # PgBouncer holds server connections that a DROP at the end would trip over)
        started = time.monotonic()
        # (Not schemathesis: it drives a gunicorn of its own rather than the test client, and has
        # its own budget; tests/api/test_schemathesis.py.)
        done = subprocess.run([sys.executable, "-m", "pytest", "tests/api", "--reuse-db", "-x",
                               "--ignore", "tests/api/test_schemathesis.py"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=BUDGET_SECONDS + 60)
        elapsed = time.monotonic() - started
    finally:
        pid = (tmp_path / "pgbouncer.pid").read_text().strip()
        subprocess.run(["kill", pid], check=False)
        drop_database(f"test_{DATABASE}")
        shutil.rmtree(tmp_path, ignore_errors=True)
    # then
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    assert passed > 300, summary
    assert elapsed < BUDGET_SECONDS, f"the pooled API run took {elapsed:.0f} s"
