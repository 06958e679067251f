"""`make run` and `make serve`: the web server, a Celery worker and Celery beat, together.

    python scripts/stack.py run   [--port 8000]   development: runserver, debug from .env,
                                                  the demo's shell lines printed last
    python scripts/stack.py serve [--bind ...]    production: gunicorn, DJANGO_DEBUG=0, static
                                                  files by WhiteNoise, JSON logs

Each process runs in a process group of its own; Ctrl-C (or SIGTERM) stops all three, waits
for them, kills what is left after 10 s, and exits 0. A process that dies on its own stops
the others, and the exit code says so. Production hosts would rather run the three under
systemd (see README.md, "Running in production"); this is the same three commands.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
STOP_GRACE_SECONDS = 10


def commands(mode: str, bind: str) -> dict[str, list[str]]:
    level = os.environ.get("ZENTRA_LOG_LEVEL", "WARNING")
    celery = [str(BIN / "celery"), "-A", "zentra", "--quiet"]
    worker = [*celery, "worker", "--loglevel", level,
              "--concurrency", os.environ.get("ZENTRA_WORKER_CONCURRENCY", "2")]
    beat = [*celery, "beat", "--loglevel", level, "--schedule", str(ROOT / "var" / "celerybeat-schedule")]
    if mode == "run":
        web = [PYTHON, "manage.py", "runserver", bind, "--noreload"]
    else:
        web = [str(BIN / "gunicorn"), "--config", "python:zentra.gunicorn_conf", "--bind", bind, "zentra.wsgi"]
    return {"web": web, "worker": worker, "beat": beat}


class Stack:
    def __init__(self, mode: str, env: dict[str, str]) -> None:
        self.mode = mode
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.output = threading.Lock()

    def start(self, name: str, argv: list[str]) -> None:
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
        self.processes[name] = process
        threading.Thread(target=self._relay, args=(name, process), daemon=True).start()

    def _relay(self, name: str, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.say(self._shown(name, line.rstrip("\n")))

    def _shown(self, name: str, line: str) -> str:
        if self.mode == "serve":  # JSON lines stay JSON, naming their process
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                return json.dumps({"process": name, **record})
            return json.dumps({"process": name, "message": line})
        return f"{name:<6} | {line}"

    def say(self, text: str) -> None:
        with self.output:
            print(text, flush=True)

    def wait_until_up(self, url: str, seconds: float = 60) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping.is_set():
            if self.died():
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.3)
        return False

    def died(self) -> str | None:
        return next((name for name, process in self.processes.items() if process.poll() is not None), None)

    def stop(self) -> None:
        for process in self.processes.values():
            self._signal(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL)
                process.wait()

    @staticmethod
    def _signal(process: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(process.pid, signum)  # the whole group: gunicorn's and Celery's children too
        except ProcessLookupError:
            pass


def preflight(env: dict[str, str]) -> str | None:
    """Settings load as the processes will load them; the reason they do not, in one line."""
    check = subprocess.run([PYTHON, "-c", "import zentra.settings"], cwd=ROOT, env=env, capture_output=True,
                           text=True)
    if check.returncode == 0:
        return None
    lines = [line for line in check.stderr.strip().splitlines() if line.strip()]
    return lines[-1].split(": ", 1)[-1] if lines else "settings did not load"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["run", "serve"])
    parser.add_argument("--port", default=os.environ.get("ZENTRA_PORT", "8000"))
    parser.add_argument("--bind", help="host:port to listen on (default 127.0.0.1:PORT)")
    args = parser.parse_args()
    bind = args.bind or f"127.0.0.1:{args.port}"
    local_url = f"http://127.0.0.1:{bind.rsplit(':', 1)[1]}"
    env = dict(os.environ)
    if args.mode == "serve":
        env["DJANGO_DEBUG"] = "0"
    else:
        # The development container runs as root; Celery's warning about it says nothing new.
        env.setdefault("PYTHONWARNINGS", "ignore:You're running the worker with superuser privileges")
    (ROOT / "var").mkdir(exist_ok=True)  # beat's schedule, and the walkthrough's files
    problem = preflight(env)
    if problem:
        print(f"zentra: {problem}", file=sys.stderr)
        return 2

    stack = Stack(args.mode, env)
    stopped_by_signal = threading.Event()

    def on_signal(signum, frame):
        stopped_by_signal.set()
        stack.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for name, argv in commands(args.mode, bind).items():
        stack.start(name, argv)

    if stack.wait_until_up(f"{local_url}/healthz"):
        if args.mode == "run":
            banner = subprocess.run([PYTHON, "manage.py", "demo_env", "--base-url", local_url], cwd=ROOT, env=env,
                                    capture_output=True, text=True)
            stack.say("\n" + (banner.stdout.strip() or f"Zentra is up at {local_url}/admin/") + "\n")
        else:
            stack.say(json.dumps({"process": "stack", "message": f"Zentra is serving at {local_url}",
                                  "level": "INFO"}))
    while not stack.stopping.is_set():
        if (dead := stack.died()) is not None:
            stack.say(f"zentra: {dead} exited with code {stack.processes[dead].returncode}; stopping the others")
            stack.stopping.set()
            break
        stack.stopping.wait(0.5)
    stack.stop()
    return 0 if stopped_by_signal.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
