"""The id of the request being served, for evidence written deep inside services."""

import contextvars

_current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("zentra_request_id", default=None)


def current_request_id() -> str | None:
    return _current_request_id.get()


def set_request_id(request_id: str | None):
    return _current_request_id.set(request_id)


def reset_request_id(token) -> None:
    _current_request_id.reset(token)
