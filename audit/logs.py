"""Structured logs: one JSON object per line, each naming the request it belongs to.

`make serve` (and any process with DJANGO_DEBUG off) logs this way, so a line found in a log
search leads to the request's evidence and its trace (`/admin/trace/<request id>/`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from .context import current_request_id

# Attributes every LogRecord has; anything else was passed in `extra=` and is kept.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        line.update({key: value for key, value in record.__dict__.items()
                     if key not in _STANDARD and key not in line and not key.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
