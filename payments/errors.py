"""Payments errors, each with its problem code (the API turns them into problem+json)."""

from zentra.errors import Conflict, ValidationFailed


class PolicyRuleConflict(Conflict):
    """A change giving a rule's kind or its params, not both, that does not fit the other as the
    rule has it: the request is well formed, the rule's current state refuses it."""

    code = "policy_rule_conflict"
    title = "Change does not fit the rule"


class SignatureRejected(ValidationFailed):
    status = 401
    code = "signature_invalid"
    title = "Signature invalid"
