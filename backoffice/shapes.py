"""The public shape of an evidence export (docs/api.md, "Evidence exports"): the API's answer and
the admin's summary of it. `from` is a Python keyword, hence the functional TypedDict."""

from __future__ import annotations

from typing import Literal, TypedDict

from zentra.shapes import Timestamp, iso, iso_or_none

from .models import EvidenceExport

EvidenceExportBody = TypedDict("EvidenceExportBody", {
    "id": str,
    "object": Literal["evidence_export"],
    "resource": str,
    "from": Timestamp | None,
    "to": Timestamp,
    "status": Literal["building", "ready", "failed"],
    "sha256": str | None,
    "size": int | None,
    "kid": str | None,
    "files": dict[str, str],
    "failure_reason": str | None,
    "created_at": Timestamp,
    "completed_at": Timestamp | None,
})
EvidenceExportBody.__doc__ = (
    "A signed zip of the evidence about one account, payment intent or hold over [from, to): `to` is "
    "when the export was asked for unless given. `sha256` (of the zip), `size`, `kid` (the key that signed "
    "its manifest) and `files` (the manifest's name -> sha256) are set once it is ready; `failure_reason` "
    "when it failed.")


def evidence_export_body(export: EvidenceExport) -> EvidenceExportBody:
    ready = export.status == EvidenceExport.READY
    return {
        "id": export.id, "object": "evidence_export", "resource": export.resource,
        "from": iso_or_none(export.period_from), "to": iso(export.period_to),
        "status": export.status,  # type: ignore[typeddict-item]
        "sha256": export.sha256 if ready else None, "size": export.size if ready else None,
        "kid": export.kid if ready else None, "files": dict(export.files) if ready else {},
        "failure_reason": export.failure_reason or None,
        "created_at": iso(export.created_at), "completed_at": iso_or_none(export.completed_at),
    }
