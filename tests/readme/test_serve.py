"""`make serve` as production runs it (gunicorn, worker, beat, DJANGO_DEBUG=0): the admin with
its styles from WhiteNoise, the API, JSON log lines naming their request; a missing secret
stops start-up with one clear line; and local settings come from `.env`, never in tests."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.readme.test_walkthrough import ROOT, database_url, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def production_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DJANGO_", "ZENTRA_")) and name != "DATABASE_URL"}
    env.update({"DATABASE_URL": database_url(), "ZENTRA_DOTENV": "0", "ZENTRA_STATIC_ROOT": str(tmp_path / "static"),
                "DJANGO_SECRET_KEY": "a-production-secret-for-this-test-only-" + "x" * 20,
                "ZENTRA_LEDGER_KEY": "a-ledger-key-for-this-test-only-" + "y" * 20,
                "ZENTRA_SIGNING_KEY": base64.b64encode(b"s" * 32).decode(),
                "ZENTRA_WEB_WORKERS": "1", "ZENTRA_WEB_THREADS": "2", "ZENTRA_WORKER_CONCURRENCY": "1", **extra})
    return env


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def test_serve_answers_the_admin_with_hashed_compressed_styles_and_logs_json_with_request_ids(tmp_path):
    env = production_env(tmp_path)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], cwd=ROOT,
                   env=env, check=True)
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    stack = subprocess.Popen([sys.executable, "scripts/stack.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while "Zentra is serving" not in (tmp_path / "serve.log").read_text():
            assert stack.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        # when
        status, headers, login = get(f"{base}/admin/login/")
        api_status, api_headers, index = get(f"{base}/v1/")
        stylesheet = re.search(rb'href="(/static/zentra/admin\.[0-9a-f]{12}\.css)"', login)
        request = urllib.request.Request(base + stylesheet.group(1).decode(), headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=5) as response:
            css_headers = {k.lower(): v for k, v in response.headers.items()}
    finally:
        stack.send_signal(signal.SIGINT)
        code = stack.wait(timeout=30)
        log.close()
    # then: the admin's page names its stylesheet by a hash, served compressed and cached for good
    assert status == 200 and stylesheet, login[:500]
    assert css_headers["content-encoding"] == "gzip" and "immutable" in css_headers["cache-control"]
    assert api_status == 200 and json.loads(index)["object"] == "api"
    # and every line is JSON; the web process logs each request with its id
    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines() if line.strip()]
    requests = [line for line in lines if line.get("logger") == "zentra.request"]
    assert "web" in {line["process"] for line in lines}  # worker and beat say nothing at WARNING unless wrong
    assert any(line["request_id"] == api_headers["x-request-id"] and line["path"] == "/v1/" and line["status"] == 200
               for line in requests), requests
    # and Ctrl-C stopped all three, which is no error
    assert code == 0


def test_serve_without_a_secret_key_names_it_and_starts_nothing(tmp_path):
    env = production_env(tmp_path)
    del env["DJANGO_SECRET_KEY"]
    # when
    done = subprocess.run([sys.executable, "scripts/stack.py", "serve", "--port", str(free_port())], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    # then: one line, no traceback
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "DJANGO_SECRET_KEY is not set" in done.stderr and "Traceback" not in done.stderr


def test_local_settings_come_from_dotenv_but_never_under_the_test_runner(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DJANGO_DEBUG=1\nZENTRA_DEMO_PASSWORD=from-dotenv\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "ZENTRA_"))}
    env["ZENTRA_DOTENV_FILE"] = str(dotenv)
    show = ("from zentra.env import load_local_env; load_local_env(); import os; print(*(os.environ.get(name) "
            "for name in ('DJANGO_DEBUG', 'ZENTRA_DEMO_PASSWORD', 'ZENTRA_DOTENV')))")
    # when: a process such as manage.py, Celery or gunicorn starts
    plain = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    # and when the test runner does (pytest imported first), or a process it starts
    under_tests = subprocess.run([sys.executable, "-c", "import pytest; " + show], cwd=ROOT, env=env,
                                 capture_output=True, text=True, check=True)
    started_by_tests = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env={**env, "ZENTRA_DOTENV": "0"},
                                      capture_output=True, text=True, check=True)
    # then
    assert plain.stdout.split() == ["1", "from-dotenv", "None"]
    assert under_tests.stdout.split() == ["None", "None", "0"]
    assert started_by_tests.stdout.split() == ["None", "None", "0"]
    # and a variable already set wins over the file
    kept = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env={**env, "DJANGO_DEBUG": "0"},
                          capture_output=True, text=True, check=True)
    assert kept.stdout.split()[0] == "0"
