"""The README runs as written: its walkthrough's shell blocks, extracted from README.md (not a
copy), run in order in one bash against a fresh demo served by `scripts/stack.py run` (web,
worker and beat, as `make run` starts them), and every line the README marks `# → ...` is
printed, in that order.

The processes read their settings from a `.env` file, as after `make run`: nothing is
exported to them but where that file is, the ports and the tools' PATH.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
START, END = "<!-- walkthrough", "<!-- /walkthrough -->"
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.M | re.S)
MARK = re.compile(r"^\s*# → (.+)$")
# A Redis database of its own: no other worker on this machine takes the walkthrough's tasks.
REDIS_DB = 12

pytestmark = pytest.mark.django_db(transaction=True)


def walkthrough() -> tuple[str, list[str]]:
    """The walkthrough's shell blocks, joined, and the lines they say they print, in order."""
    text = README.read_text()
    region = text[text.index(START):text.index(END)]
    blocks = BLOCK.findall(region)
    assert len(blocks) >= 6, "the README's walkthrough has lost its blocks"
    expected = [match.group(1).strip() for block in blocks for line in block.splitlines()
                if (match := MARK.match(line))]
    return "\n".join(blocks), expected


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def in_order(expected: list[str], printed: list[str]) -> list[str]:
    """The expected lines not found, in order, at the start of a printed line."""
    position, missing = 0, []
    for want in expected:
        found = next((i for i in range(position, len(printed)) if printed[i].startswith(want)), None)
        if found is None:
            missing.append(want)
        else:
            position = found + 1
    return missing


@pytest.fixture
def demo_stack(tmp_path):
    """The demo seeded into the test database, and web, worker and beat serving it."""
    key_file = tmp_path / "demo-api-key"
    # The stack chains and signs with the keys of its .env; the seed must use the same ones.
    keys = {"ZENTRA_LEDGER_KEY": secrets.token_urlsafe(50),
            "ZENTRA_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
    with override_settings(**keys):
        call_command("seed_demo", "--key-file", str(key_file), stdout=open(os.devnull, "w"))
    redis_url = f"{settings.REDIS_URL.rsplit('/', 1)[0]}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    dotenv = tmp_path / ".env"
    dotenv.write_text("\n".join([
        "DJANGO_DEBUG=1", f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}", "ZENTRA_WEBHOOK_ALLOW_PRIVATE=1",
        f"DATABASE_URL={database_url()}", f"REDIS_URL={redis_url}", f"CELERY_BROKER_URL={redis_url}",
        f"ZENTRA_DEMO_KEY_FILE={key_file}", *(f"{name}={value}" for name, value in keys.items())]) + "\n")
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DJANGO_", "ZENTRA_", "CELERY_")) and name not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"ZENTRA_DOTENV_FILE": str(dotenv), "PORT": str(port), "HOOKS_PORT": str(free_port()),
                "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"})
    log = (tmp_path / "stack.log").open("w")
    stack = subprocess.Popen([sys.executable, "scripts/stack.py", "run", "--port", str(port)], cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "export ZENTRA=" not in (tmp_path / "stack.log").read_text():
            assert stack.poll() is None and time.monotonic() < deadline, (tmp_path / "stack.log").read_text()
            time.sleep(0.3)
        yield env
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            code = stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            code = stack.wait()
        log.close()
    # Ctrl-C stops all three and is no error
    assert code == 0, (tmp_path / "stack.log").read_text()[-3000:]


def test_the_readme_walkthrough_prints_what_the_readme_shows(demo_stack):
    script, expected = walkthrough()
    # when: the blocks run one after another, as a reader pasting them would
    done = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script], cwd=ROOT, env=demo_stack,
                          capture_output=True, text=True, timeout=180)
    printed = [line.strip() for line in (done.stdout + "\n" + done.stderr).splitlines()]
    # then: every marked line, in order, and no command failed
    missing = in_order([line for line in expected if not line.startswith("HTTP")],
                       [line for line in done.stdout.splitlines()])
    statuses = [line for line in printed if re.fullmatch(r"HTTP \d{3}", line)]
    assert done.returncode == 0, done.stdout[-4000:] + "\n--- stderr\n" + done.stderr[-4000:]
    assert statuses == [line for line in expected if line.startswith("HTTP")], done.stderr[-4000:]
    assert not missing, f"not printed: {missing}\n--- stdout\n{done.stdout[-4000:]}"
