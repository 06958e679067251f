from zentra.errors import Conflict, Unprocessable, ValidationFailed, ZentraError


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
