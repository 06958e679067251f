from rest_framework.exceptions import APIException, Throttled

from zentra.errors import Conflict, Unprocessable, ValidationFailed, ZentraError

from .ratelimit import Decision


class IdempotencyKeyRequired(ValidationFailed):
    code = "idempotency_key_required"
    title = "Idempotency-Key required"


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused"


class IdempotencyRequestInProgress(Conflict):
    code = "idempotency_request_in_progress"
    title = "Request with this Idempotency-Key in progress"


class PayloadTooLarge(ZentraError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class IdempotencyOutcomeUnknown(Conflict):
    code = "idempotency_outcome_unknown"
    title = "Outcome of the first request with this Idempotency-Key unknown"


class RateLimited(Throttled):
    """429 rate_limited with Retry-After. A DRF exception rather than a ZentraError: raised while
    authenticating, DRF then marks the request unauthenticated instead of authenticating it again."""

    def __init__(self, decision: Decision, detail: str) -> None:
        APIException.__init__(self, detail)  # without Throttled's own "Expected available in ..."
        self.wait = decision.retry_after
