"""What every public shape is made of.

Each resource has one public shape: a TypedDict in its app's `shapes.py`, and one function that
builds it from the models. The same dict is the API response, the event payload and the webhook
body; the OpenAPI document is generated from the TypedDict (zentra/api/schema.py), and mypy
checks the builder against it. These aliases carry the wire format the schema needs to know
beyond the Python type: a timestamp is a string in ISO 8601 (UTC, `Z`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NewType

Timestamp = NewType("Timestamp", str)
# Client-supplied JSON object (metadata): any keys, any JSON values.
JSONObject = dict[str, Any]


def iso(value: datetime) -> Timestamp:
    text = value.isoformat()
    return Timestamp(text[:-6] + "Z" if text.endswith("+00:00") else text)


def iso_or_none(value: datetime | None) -> Timestamp | None:
    return None if value is None else iso(value)
