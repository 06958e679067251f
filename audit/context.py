"""The request being served, for evidence written deep inside services: its id, for API calls
the operation (`POST /v1/holds/hold_.../capture`) a refusal names as its action, and the client's
address, by which the refusals of callers who proved no identity are counted (evidence.py)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("zentra_request_id", default=None)
_current_operation: contextvars.ContextVar[str | None] = contextvars.ContextVar("zentra_operation", default=None)
_current_client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar("zentra_client_address",
                                                                                     default=None)


def current_request_id() -> str | None:
    return _current_request_id.get()


def current_operation() -> str | None:
    return _current_operation.get()


def current_client_address() -> str | None:
    return _current_client_address.get()


def set_request_id(request_id: str | None) -> contextvars.Token[str | None]:
    return _current_request_id.set(request_id)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _current_request_id.reset(token)


@contextlib.contextmanager
def serving(*, request_id: str, operation: str | None, client_address: str | None = None) -> Iterator[None]:
    """Evidence written while the block runs names this request (operation, client address)."""
    id_token = _current_request_id.set(request_id)
    operation_token = _current_operation.set(operation)
    address_token = _current_client_address.set(client_address)
    try:
        yield
    finally:
        _current_client_address.reset(address_token)
        _current_operation.reset(operation_token)
        _current_request_id.reset(id_token)
