"""Payments errors, each with its problem code (the API turns them into problem+json)."""

from zentra.errors import ValidationFailed


class SignatureRejected(ValidationFailed):
    status = 401
    code = "signature_invalid"
    title = "Signature invalid"
