"""Approval errors, with the problem codes of docs/api.md."""

from zentra.errors import Conflict, ZentraError


class SameActorDecision(ZentraError):
    """The four-eyes rule: whoever proposed an action may not decide it."""

    status = 403
    code = "permission_denied"
    title = "Permission denied"


class ApprovalNotPending(Conflict):
    code = "invalid_state_transition"
    title = "Invalid state transition"
