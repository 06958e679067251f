"""Evidence exports (docs/evidence-exports.md): asked for, built by a worker, downloaded with
evidence of every copy, verified offline.

- `evidence_export_request` checks the request (the resource is the actor's tenant's, or a 404
  and an AccessDenial; the period is ordered and over), writes the export as `building`, and
  asks a worker to build it once that has committed. Nothing is written on a refusal.
- `evidence_export_build` (the worker's task, and the periodic sweep of exports whose nudge
  was lost) gathers the files (selectors/exports.py), writes manifest.json with every file's
  sha256, signs its exact bytes with the service's Ed25519 key (zentra/keys.py), and stores the
  zip in the row with its own sha256: `ready`, or `failed` with the reason. The export row is
  locked while it is built (SKIP LOCKED), so a nudge and the sweep never build it twice.
- `evidence_export_download` writes one EvidenceExportDownload before the bytes leave.
- `export_verify` is the check `manage.py verify_export` runs; scripts/verify_export.py is the
  same check without Django, for whoever received the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import current_app
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.context import current_client_address, current_request_id
from tenants.selectors import Scope, tenant_object
from zentra.errors import InvalidStateTransition, ValidationFailed
from zentra.keys import signing_keys
from zentra.shapes import iso, iso_or_none

from ..models import EvidenceExport, EvidenceExportDownload
from ..selectors.exports import EXPORTABLE, README, export_contents, exportable_label

logger = logging.getLogger("zentra.backoffice")

BUILD_TASK = "backoffice.tasks.evidence_export_build"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
# The sweep leaves a fresh export to the worker its nudge reached.
SWEEP_AFTER = timedelta(seconds=30)


# --- asking ----------------------------------------------------------------------------------

def evidence_export_request(*, scope: Scope, resource: str, period_from: datetime | None,
                            period_to: datetime | None, actor: Actor, action: str) -> EvidenceExport:
    label = exportable_label(resource)
    if label is None:
        raise ValidationFailed(f"resource: {resource!r} is not an account, payment intent or hold id", errors=[
            {"field": "resource", "message": "Must be an account (acct_...), payment intent (pi_...) or hold "
                                             "(hold_...) id."}])
    now = timezone.now()
    if period_to is not None and period_to > now:
        raise ValidationFailed("to: the period must be over (to is in the future)", errors=[
            {"field": "to", "message": "Must not be in the future: an export describes what has happened."}])
    until = period_to or now
    if period_from is not None and period_from >= until:
        raise ValidationFailed("from: must be before to", errors=[
            {"field": "from", "message": "Must be before `to` (or before now when `to` is not given)."}])
    model, _ = EXPORTABLE[resource.split("_", 1)[0]]
    with transaction.atomic(durable=True):
        target: Any = tenant_object(model, resource, scope=scope, action=action, label=label, field="resource")
        export = EvidenceExport.objects.create(
            tenant_id=target.tenant_id, resource=resource, period_from=period_from, period_to=until,
            requested_by=str(actor), requested_by_label=actor.label[:200], request_id=current_request_id() or "",
            created_at=now)
        export_id = export.id
        transaction.on_commit(lambda: _nudge_build(export_id))
    return export


def _nudge_build(export_id: str) -> None:
    """Ask a worker to build it now. Best effort: with the broker down the export waits for the
    periodic sweep. The task is named, not imported: tasks sit above the services they wrap."""
    try:
        current_app.send_task(BUILD_TASK, args=[export_id], retry=False)
    except Exception as exc:  # any broker failure; the export row is safe in PostgreSQL
        logger.warning("could not queue the build of %s (%s); the periodic sweep will build it", export_id, exc)


# --- building --------------------------------------------------------------------------------

def evidence_export_build(*, export_id: str, actor: Actor) -> EvidenceExport | None:
    """Build one export that is still `building`; None when it is gone, being built elsewhere or
    already built. Runs within the export's tenant (the caller's scope)."""
    with transaction.atomic(durable=True):
        export = (EvidenceExport.objects.select_for_update(skip_locked=True, of=("self",))
                  .filter(pk=export_id, status=EvidenceExport.BUILDING).first())
        if export is None:
            return None
        scope = Scope.of_tenant(export.tenant_id, actor)
        try:
            with transaction.atomic():  # a failed read must not spoil the transaction that says so
                archive, files = export_archive(export, export_contents(scope, export))
        except Exception as exc:
            logger.exception("evidence export %s failed", export.id, extra={"export": export.id})
            export.status = EvidenceExport.FAILED
            export.failure_reason = f"{type(exc).__name__}: {exc}"[:500]
        else:
            export.status = EvidenceExport.READY
            export.archive = archive
            export.sha256 = hashlib.sha256(archive).hexdigest()
            export.size = len(archive)
            export.files = files
            export.kid = signing_keys().kid
        export.completed_at = timezone.now()
        export.save(update_fields=["status", "archive", "sha256", "size", "files", "kid", "failure_reason",
                                   "completed_at"])
    return export


def evidence_exports_build_pending(*, actor: Actor) -> int:
    """The sweep: build the exports of the current tenant scope that still wait."""
    due = (EvidenceExport.objects.filter(status=EvidenceExport.BUILDING, created_at__lte=timezone.now() - SWEEP_AFTER)
           .order_by("id").values_list("id", flat=True))
    return sum(1 for export_id in list(due[:50]) if evidence_export_build(export_id=export_id, actor=actor))


def manifest_document(export: EvidenceExport, files: dict[str, str], kid: str) -> bytes:
    """The exact bytes that are signed."""
    return json.dumps({"kid": kid, "resource": export.resource, "from": iso_or_none(export.period_from),
                       "to": iso(export.period_to), "created_at": iso(export.created_at), "files": files},
                      indent=2, sort_keys=True).encode() + b"\n"


def export_archive(export: EvidenceExport, contents: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The zip: each file as JSON (sorted keys, so the same evidence gives the same bytes), a
    README, the manifest of their sha256 and its signature. Returns (zip bytes, files)."""
    blobs: dict[str, bytes] = {"README.txt": README.encode()}
    for name, value in contents.items():
        blobs[name] = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n"
    files = {name: hashlib.sha256(blob).hexdigest() for name, blob in sorted(blobs.items())}
    keys = signing_keys()
    manifest = manifest_document(export, files, keys.kid)
    blobs[MANIFEST] = manifest
    blobs[SIGNATURE] = keys.sign(manifest).encode()
    stamp = export.created_at.astimezone(UTC).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, blob in blobs.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, blob)
    return buffer.getvalue(), files


# --- downloading -----------------------------------------------------------------------------

def evidence_export_download(*, export: EvidenceExport, actor: Actor, channel: str) -> bytes:
    """The zip of a ready export, after writing who took it (InvalidStateTransition before)."""
    if export.status != EvidenceExport.READY:
        detail = ("is still building; download it once its status is ready" if export.status == EvidenceExport.BUILDING
                  else f"failed ({export.failure_reason or 'no reason recorded'}); ask for a new one")
        raise InvalidStateTransition(f"Evidence export {export.id} {detail}",
                                     headers={"Retry-After": "2"} if export.status == EvidenceExport.BUILDING else None)
    archive = bytes(export.archive or b"")
    EvidenceExportDownload.objects.create(
        tenant_id=export.tenant_id, export=export, actor=str(actor), actor_label=actor.label[:200], channel=channel,
        request_id=current_request_id() or "", client_address=current_client_address() or None,
        sha256=export.sha256)
    return archive


# --- verifying -------------------------------------------------------------------------------

@dataclass
class Verification:
    manifest: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def export_verify(archive: bytes, public_keys: dict[str, Ed25519PublicKey]) -> Verification:
    """Every file against the manifest's sha256, and the manifest's signature against the key it
    names (`public_keys`: kid -> key). Each mismatch is one line of `problems`."""
    result = Verification()
    try:
        zipped = zipfile.ZipFile(io.BytesIO(archive))
        names = zipped.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        result.problems.append(f"not a readable zip file ({exc})")
        return result
    blobs: dict[str, bytes] = {}
    for name in names:
        if name in blobs:
            result.problems.append(f"{name}: appears twice in the zip")
        blobs[name] = zipped.read(name)
    if MANIFEST not in blobs or SIGNATURE not in blobs:
        result.problems.append(f"{MANIFEST} or {SIGNATURE} is missing")
        return result
    try:
        manifest = json.loads(blobs[MANIFEST])
        files = dict(manifest["files"])
        kid = str(manifest["kid"])
    except (ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"{MANIFEST}: not a manifest ({exc})")
        return result
    result.manifest = manifest
    key = public_keys.get(kid)
    if key is None:
        result.problems.append(f"{SIGNATURE}: no public key with kid {kid} (have {', '.join(sorted(public_keys))})")
    else:
        try:
            key.verify(base64.b64decode(blobs[SIGNATURE].strip(), validate=True), blobs[MANIFEST])
        except (InvalidSignature, binascii.Error, ValueError):
            result.problems.append(f"{SIGNATURE}: the signature does not match {MANIFEST} under key {kid}")
    for name, expected in sorted(files.items()):
        if name not in blobs:
            result.problems.append(f"{name}: listed in {MANIFEST} but missing from the zip")
            continue
        actual = hashlib.sha256(blobs[name]).hexdigest()
        if actual != expected:
            result.problems.append(f"{name}: sha256 {actual} does not match {MANIFEST} ({expected})")
    for name in sorted(set(blobs) - set(files) - {MANIFEST, SIGNATURE}):
        result.problems.append(f"{name}: in the zip but not in {MANIFEST}")
    return result
