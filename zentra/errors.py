"""The domain error hierarchy. Each error carries the stable problem code of docs/api.md.

ZentraError
  ValidationFailed (400 validation_error)
  NotFound (404 not_found)
  Conflict (409): InvalidStateTransition, ...
  Unprocessable (422): AccountNotActive, CurrencyMismatch, ...
Apps add their own subclasses next to their domain (ledger/errors.py); the API edge turns
every one of them into a problem+json response, the admin into an error message.
"""

from __future__ import annotations


class ZentraError(Exception):
    status = 500
    code = "internal_error"
    title = "Internal error"

    def __init__(self, detail: str | None = None, *, errors: list[dict] | None = None, headers: dict | None = None):
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        super().__init__(self.detail)


class ValidationFailed(ZentraError):
    status = 400
    code = "validation_error"
    title = "Validation error"


class NotFound(ZentraError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(ZentraError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidStateTransition(Conflict):
    code = "invalid_state_transition"
    title = "Invalid state transition"


class Unprocessable(ZentraError):
    status = 422
    code = "unprocessable"
    title = "Unprocessable request"
