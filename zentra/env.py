"""Local settings for development: the git-ignored `.env` that `make run` writes (a secret key,
debug on, local webhook receivers allowed), so that `manage.py`, Celery and gunicorn all run as
written with nothing to export.

Loaded when present and never over a variable already set. Never under the test runner, nor
in the processes it starts: a developer's `.env` cannot change what `make test` proves. The
code's own defaults stay production-safe (debug off, no secret); only this file loosens them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dotenv import load_dotenv

ENV_FILE = Path(__file__).resolve().parent.parent / ".env"


def load_local_env() -> None:
    if "pytest" in sys.modules:
        os.environ["ZENTRA_DOTENV"] = "0"  # inherited by every process the tests start
        return
    if os.environ.get("ZENTRA_DOTENV", "1") == "0":
        return
    path = Path(os.environ.get("ZENTRA_DOTENV_FILE") or ENV_FILE)
    if path.is_file():
        load_dotenv(path, override=False)
