"""The public shape of an approval (zentra/shapes.py)."""

from __future__ import annotations

from typing import Literal, TypedDict

from zentra.shapes import JSONObject, Timestamp, iso, iso_or_none

from .models import Approval


class ApprovalBody(TypedDict):
    id: str
    object: Literal["approval"]
    action: str
    payload: JSONObject
    summary: str
    target: str | None
    status: Literal["pending", "approved", "rejected", "expired"]
    proposed_by: str
    decided_by: str | None
    reason: str | None
    result: str | None
    created_at: Timestamp
    expires_at: Timestamp
    decided_at: Timestamp | None


def approval_body(approval: Approval) -> ApprovalBody:
    return {"id": approval.id, "object": "approval", "action": approval.action, "payload": approval.payload,
            "summary": approval.summary, "target": approval.target or None,
            "status": approval.status,  # type: ignore[typeddict-item]
            "proposed_by": approval.proposed_by, "decided_by": approval.decided_by or None,
            "reason": approval.reason or None, "result": approval.result or None,
            "created_at": iso(approval.created_at), "expires_at": iso(approval.expires_at),
            "decided_at": iso_or_none(approval.decided_at)}
