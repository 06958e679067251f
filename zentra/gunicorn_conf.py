"""gunicorn's settings for `make serve` and production (`gunicorn -c python:zentra.gunicorn_conf`).

Threads rather than many processes: a request mostly waits on PostgreSQL, and every thread
keeps its own database connections (two: the request's and the evidence one). The defaults
suit 2 cores; ZENTRA_WEB_WORKERS and ZENTRA_WEB_THREADS change them.
"""

import multiprocessing
import os

bind = os.environ.get("ZENTRA_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("ZENTRA_WEB_WORKERS") or multiprocessing.cpu_count() + 1)
threads = int(os.environ.get("ZENTRA_WEB_THREADS") or 4)
timeout = int(os.environ.get("ZENTRA_WEB_TIMEOUT_SECONDS") or 30)
graceful_timeout = 10
# Django logs one JSON line per request, with its request id (zentra/api/middleware.py);
# gunicorn's own lines (start, stop, a worker killed) are JSON too.
accesslog = None
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "audit.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "loggers": {"gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
