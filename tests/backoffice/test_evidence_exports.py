"""Evidence exports: asked for through the API or the admin, built by the worker's task, served as
a zip whose manifest is signed, verified by `manage.py verify_export` and by the standalone
scripts/verify_export.py; tampering is caught, other tenants' ids are a 404 with evidence, bad
input writes nothing, and every download leaves a row."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessDenial
from backoffice.models import EvidenceExport, EvidenceExportDownload
from backoffice.services.exports import evidence_exports_build_pending
from backoffice.tasks import BUILDER, build_evidence_export
from ledger.models import logical_account_of
from payments.services.sandbox import sandbox_settle_due
from tests.conftest import as_app_role
from tests.payments.test_support import confirmed, fund, open_desk
from zentra.db.scope import tenant_scope

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify_export.py"
FILES = {"README.txt", "statement.json", "entries.json", "transitions.json", "events.json", "history.json",
         "access_denials.json", "requests.json", "trace.json"}


@pytest.fixture
def settled(tenant_a, settings):
    """A payment that settled, with a webhook endpoint told about it."""
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True
    desk = open_desk(tenant_a)
    assert tenant_a.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hooks"}).status_code == 201
    intent = confirmed(desk, 10_000)
    assert sandbox_settle_due() == 1
    return desk, intent


def build(export_id: str) -> str:
    """What the worker does with the task the request queued: as the application role, so the
    task finds its tenant and reads through row-level security as in production."""
    with as_app_role():
        return build_evidence_export.apply(args=[export_id]).get()


def ask(ctx, body: dict) -> dict:
    response = ctx.post("/v1/evidence_exports", body)
    assert response.status_code == 202, response.content
    return response.json()


def unzip(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        return {name: zipped.read(name) for name in zipped.namelist()}


def rezip(blobs: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, blob in blobs.items():
            zipped.writestr(name, blob)
    return buffer.getvalue()


def run_script(path: Path, *args: str) -> subprocess.CompletedProcess:
    # From an empty directory and isolated (-I): nothing of the project or Django is importable
    # by path, as for whoever received the file.
    return subprocess.run([sys.executable, "-I", str(SCRIPT), str(path), *args], capture_output=True, text=True,
                          cwd=path.parent, timeout=60)


def keys_file(tenant_a, tmp_path: Path) -> Path:
    listing = tenant_a.client.get("/v1/signing_keys")
    assert listing.status_code == 200
    path = tmp_path / "signing_keys.json"
    path.write_bytes(listing.content)
    return path


def test_an_export_is_built_by_the_worker_downloaded_and_verifies_with_the_command_and_the_script(
        tenant_a, settled, tmp_path, capsys):
    desk, intent = settled
    # when: asked for
    export = ask(tenant_a, {"resource": intent["id"]})
    # then: answered at once, still building, the period ending when it was asked for
    assert export["id"].startswith("exp_") and export["object"] == "evidence_export"
    assert (export["resource"], export["status"], export["from"], export["sha256"]) == (
        intent["id"], "building", None, None)
    assert export["to"] == export["created_at"]
    waiting = tenant_a.get(f"/v1/evidence_exports/{export['id']}/download")
    assert waiting.status_code == 409 and waiting.json()["code"] == "invalid_state_transition"
    assert waiting["Retry-After"] == "2"
    # when: the worker builds it
    assert build(export["id"]) == "ready"
    # then
    ready = tenant_a.get(f"/v1/evidence_exports/{export['id']}").json()
    assert ready["status"] == "ready" and len(ready["sha256"]) == 64 and ready["completed_at"]
    assert set(ready["files"]) == FILES
    listed = tenant_a.get("/v1/evidence_exports", resource=intent["id"], status="ready").json()
    assert [e["id"] for e in listed["data"]] == [export["id"]]
    download = tenant_a.get(f"/v1/evidence_exports/{export['id']}/download")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert download["Content-Disposition"] == f'attachment; filename="{export["id"]}.zip"'
    assert hashlib.sha256(download.content).hexdigest() == ready["sha256"]
    # the zip: every file, a manifest of exactly the contract's keys, what the story holds
    blobs = unzip(download.content)
    assert set(blobs) == FILES | {"manifest.json", "manifest.sig"}
    manifest = json.loads(blobs["manifest.json"])
    assert set(manifest) == {"kid", "resource", "from", "to", "created_at", "files"}
    assert (manifest["resource"], manifest["from"], manifest["to"]) == (intent["id"], None, export["to"])
    assert manifest["files"] == {name: hashlib.sha256(blobs[name]).hexdigest() for name in FILES}
    assert manifest["kid"] == tenant_a.client.get("/v1/signing_keys").json()["data"][0]["kid"]
    entries = json.loads(blobs["entries.json"])
    assert entries and all(len(e["hash"]) == 64 and e["key_id"] and e["sequence"] >= 1 and "balance_after" in e
                           for e in entries)
    # by account: a hot account's entries chain on its shard rows ("<account>.s<k>")
    assert {logical_account_of(e["account"])[0] for e in entries} >= {desk.customer, desk.reserve, desk.settlement,
                                                                      desk.merchant}
    statement = json.loads(blobs["statement.json"])
    assert statement["resource"]["id"] == intent["id"] and statement["resource"]["status"] == "succeeded"
    assert [t["kind"] for t in statement["transactions"]] == ["hold", "capture", "settlement"]
    transitions = json.loads(blobs["transitions.json"])
    assert [t["to"] for t in transitions if t["object"] == intent["id"]][-1] == "succeeded"
    events = json.loads(blobs["events.json"])
    assert events and all(e["deliveries"] for e in events)
    assert all(d["url"] == "http://127.0.0.1:9/hooks" for e in events for d in e["deliveries"])
    assert json.loads(blobs["history.json"])
    assert any(r["path"] == "/v1/payment_intents" for r in json.loads(blobs["requests.json"]))
    # and it verifies: the command with this service's keys, the script with the published ones
    path = tmp_path / f"{export['id']}.zip"
    path.write_bytes(download.content)
    call_command("verify_export", str(path))
    assert capsys.readouterr().out.startswith(f"OK {path}: {len(FILES)} files match manifest.json")
    checked = run_script(path, "--keys", str(keys_file(tenant_a, tmp_path)))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"OK {path}:")
    # the download is evidence: who, which export, which bytes, under the request's id
    row = EvidenceExportDownload.objects.get()
    assert (row.export_id, row.channel, row.sha256, row.request_id, row.tenant_id) == (
        export["id"], "api", ready["sha256"], download["X-Request-Id"], tenant_a.tenant.id)
    assert row.actor.startswith("api_key:")


def test_an_account_export_holds_the_period_only_with_its_opening_balance(tenant_a, settled):
    desk, _ = settled
    before = tenant_a.get(f"/v1/accounts/{desk.customer}").json()["balances"]["posted"]
    since = timezone.now()
    fund(tenant_a, desk.funding, desk.customer, 700)
    export = ask(tenant_a, {"resource": desk.customer, "from": since.isoformat()})
    assert build(export["id"]) == "ready"
    blobs = unzip(tenant_a.get(f"/v1/evidence_exports/{export['id']}/download").content)
    statement = json.loads(blobs["statement.json"])
    assert statement["opening_balance"] == before and statement["closing_balance"] == before + 700
    assert [(e["direction"], e["amount"]) for e in statement["entries"]] == [("credit", 700)]
    assert statement["previous_hash"] and len(statement["previous_hash"]) == 64
    assert all(item["at"] >= since.isoformat().replace("+00:00", "Z")[:19]
               for item in json.loads(blobs["trace.json"])["items"])
    assert json.loads(blobs["manifest.json"])["from"] == export["from"]


def test_a_tampered_file_a_tampered_manifest_or_another_key_fails_verification(tenant_a, settled, tmp_path):
    _, intent = settled
    export = ask(tenant_a, {"resource": intent["hold"]})
    assert build(export["id"]) == "ready"
    blobs = unzip(tenant_a.get(f"/v1/evidence_exports/{export['id']}/download").content)
    keys = keys_file(tenant_a, tmp_path)
    # given: one entry's amount changed
    entries = json.loads(blobs["entries.json"])
    entries[0]["amount"] += 1
    forged = {**blobs, "entries.json": json.dumps(entries).encode()}
    path = tmp_path / "tampered-file.zip"
    path.write_bytes(rezip(forged))
    with pytest.raises(CommandError, match="does not verify"):
        call_command("verify_export", str(path))
    checked = run_script(path, "--keys", str(keys))
    assert checked.returncode == 1 and "entries.json: sha256" in checked.stderr
    # given: the manifest rewritten to match the forged file; its signature no longer does
    manifest = json.loads(blobs["manifest.json"])
    manifest["files"]["entries.json"] = hashlib.sha256(forged["entries.json"]).hexdigest()
    path = tmp_path / "tampered-manifest.zip"
    path.write_bytes(rezip({**forged, "manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode()}))
    with pytest.raises(CommandError, match="does not verify"):
        call_command("verify_export", str(path))
    checked = run_script(path, "--keys", str(keys))
    assert checked.returncode == 1 and "manifest.sig: the signature does not match" in checked.stderr
    assert "entries.json" not in checked.stderr  # the files match the (forged) manifest
    # given: the genuine zip, checked against some other key
    path = tmp_path / "genuine.zip"
    path.write_bytes(rezip(blobs))
    other = "Ym9ndXMtYm9ndXMtYm9ndXMtYm9ndXMtYm9ndXMtMzI="  # 32 bytes, not our key
    with pytest.raises(CommandError):
        call_command("verify_export", str(path), "--public-key", other)
    assert run_script(path, "--public-key", other).returncode == 1
    public = json.loads(keys.read_text())["data"][0]["public_key"]
    call_command("verify_export", str(path), "--public-key", public)
    assert run_script(path, "--public-key", public).returncode == 0


def test_another_tenants_resource_or_export_is_a_404_with_an_access_denial(tenant_a, tenant_b, settled):
    _, intent = settled
    denials = AccessDenial.objects.count()
    # when: tenant B asks for tenant A's payment
    refused = tenant_b.post("/v1/evidence_exports", {"resource": intent["id"]})
    # then: exactly as if it did not exist, with evidence, and nothing written
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    assert refused.json()["errors"] == [{"field": "resource", "message": "No such payment intent."}]
    denial = AccessDenial.objects.get(target=intent["id"])
    assert (denial.tenant_id, denial.target_tenant_id, denial.request_id) == (
        tenant_b.tenant.id, tenant_a.tenant.id, refused["X-Request-Id"])
    assert EvidenceExport.objects.count() == 0
    # and tenant A's export, named by tenant B
    export = ask(tenant_a, {"resource": intent["id"]})
    assert build(export["id"]) == "ready"
    for path in (f"/v1/evidence_exports/{export['id']}", f"/v1/evidence_exports/{export['id']}/download"):
        response = tenant_b.get(path)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert AccessDenial.objects.filter(target=export["id"], target_tenant_id=tenant_a.tenant.id).count() == 2
    assert AccessDenial.objects.count() == denials + 3
    assert tenant_b.get("/v1/evidence_exports").json()["data"] == []
    assert not EvidenceExportDownload.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({}, "resource"),
    ({"resource": 42}, "resource"),
    ({"resource": "txn_01ABCDEFGH"}, "resource"),
    ({"resource": "acct_"}, "resource"),
    ({"resource": "ACCOUNT", "from": "2026-01-01T00:00:00Z"}, "resource"),
    ({"resource": "acct_X", "from": "yesterday"}, "from"),
    ({"resource": "acct_X", "to": 1700000000}, "to"),
    ({"resource": "acct_X", "to": "2999-01-01T00:00:00Z"}, "to"),
    ({"resource": "acct_X", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
])
def test_bad_input_is_a_400_with_field_errors_and_nothing_written(tenant_a, make_account, body, field):
    account = make_account()
    if body.get("resource") == "acct_X":
        body = {**body, "resource": account["id"]}
    response = tenant_a.post("/v1/evidence_exports", body)
    assert response.status_code == 400, response.content
    problem = response.json()
    assert problem["code"] == "validation_error" and field in {e["field"] for e in problem["errors"]}
    assert EvidenceExport.objects.count() == 0


def test_a_read_only_key_may_list_and_download_but_not_ask(tenant_a, settled):
    _, intent = settled
    reader = tenant_a.read_only_client()
    refused = reader.post("/v1/evidence_exports", {"resource": intent["id"]}, format="json",
                          HTTP_IDEMPOTENCY_KEY="ro-1")
    assert refused.status_code == 403 and EvidenceExport.objects.count() == 0
    export = ask(tenant_a, {"resource": intent["id"]})
    assert build(export["id"]) == "ready"
    assert reader.get(f"/v1/evidence_exports/{export['id']}/download").status_code == 200
    assert EvidenceExportDownload.objects.get().channel == "api"


def test_an_export_whose_nudge_was_lost_is_built_by_the_sweep_and_a_failed_one_is_not_served(
        tenant_a, settled, clock, monkeypatch):
    _, intent = settled
    export = ask(tenant_a, {"resource": intent["id"]})
    with tenant_scope([tenant_a.tenant.id]):
        assert evidence_exports_build_pending(actor=BUILDER) == 0  # fresh: the worker it was sent to builds it
        clock.forward(31)
        assert evidence_exports_build_pending(actor=BUILDER) == 1
    assert EvidenceExport.objects.get(pk=export["id"]).status == "ready"
    assert build(export["id"]) == "skipped"  # the nudge arriving late builds nothing twice
    # a build that fails says why, and is not served
    monkeypatch.setattr("backoffice.services.exports.export_contents", lambda scope, export: 1 / 0)
    broken = ask(tenant_a, {"resource": intent["id"]})
    assert build(broken["id"]) == "failed"
    body = tenant_a.get(f"/v1/evidence_exports/{broken['id']}").json()
    assert body["status"] == "failed" and body["failure_reason"].startswith("ZeroDivisionError")
    refused = tenant_a.get(f"/v1/evidence_exports/{broken['id']}/download")
    assert refused.status_code == 409 and "failed" in refused.json()["detail"]


# --- the admin ------------------------------------------------------------------------------

def test_a_compliance_reviewer_starts_an_export_in_the_admin_and_downloads_it(client, tenant_a, tenant_b, settled):
    desk, intent = settled
    reviewer = tenant_a.member("compliance")
    client.force_login(reviewer)
    # the account's page offers it
    account_page = client.get(reverse("admin:ledger_account_change", args=[desk.customer])).content.decode()
    form_url = f"{reverse('admin:backoffice_evidenceexport_add')}?resource={desk.customer}"
    assert form_url in account_page
    assert client.get(form_url).status_code == 200
    # when: the form is sent
    sent = client.post(reverse("admin:backoffice_evidenceexport_add"), {"resource": intent["id"]})
    # then: the export is building, on its page
    export = EvidenceExport.objects.get()
    assert sent.status_code == 302 and sent["Location"] == reverse("admin:backoffice_evidenceexport_change",
                                                                     args=[export.pk])
    assert (export.resource, export.requested_by, export.status) == (intent["id"], f"user:{reviewer.pk}", "building")
    assert build(export.pk) == "ready"
    download_url = reverse("admin:backoffice_evidenceexport_download", args=[export.pk])
    assert download_url in client.get(sent["Location"]).content.decode()
    listing = client.get(reverse("admin:backoffice_evidenceexport_changelist"))
    assert listing.status_code == 200 and download_url in listing.content.decode()
    # when: downloaded
    download = client.get(download_url)
    # then: the zip, and a row saying who took it
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    export.refresh_from_db()
    assert hashlib.sha256(download.content).hexdigest() == export.sha256
    row = EvidenceExportDownload.objects.get()
    assert (row.channel, row.actor, row.actor_label, row.export_id) == (
        "admin", f"user:{reviewer.pk}", reviewer.username, export.pk)
    assert row.request_id.startswith("req_")
    assert row.request_id in client.get(sent["Location"]).content.decode()  # the export's page lists it


def test_in_the_admin_another_tenants_id_is_refused_with_evidence_and_a_viewer_may_not_export(
        client, tenant_a, tenant_b, settled):
    _, intent = settled
    client.force_login(tenant_b.member("compliance"))
    refused = client.post(reverse("admin:backoffice_evidenceexport_add"), {"resource": intent["id"]})
    assert refused.status_code == 200 and "No such payment intent" in refused.content.decode()
    assert EvidenceExport.objects.count() == 0
    assert AccessDenial.objects.filter(target=intent["id"], target_tenant_id=tenant_a.tenant.id).exists()
    # a future end is the service's refusal, on the form's field
    late = client.post(reverse("admin:backoffice_evidenceexport_add"), {
        "resource": intent["id"], "period_to": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")})
    assert "Must not be in the future" in late.content.decode() and EvidenceExport.objects.count() == 0
    # a viewer is not offered exports
    client.force_login(tenant_a.member("viewer"))
    assert client.get(reverse("admin:backoffice_evidenceexport_add")).status_code == 403
    assert client.post(reverse("admin:backoffice_evidenceexport_add"), {"resource": intent["id"]}).status_code == 403
    assert EvidenceExport.objects.count() == 0
    page = client.get(reverse("admin:payments_paymentintent_change", args=[intent["id"]])).content.decode()
    assert reverse("admin:backoffice_evidenceexport_add") not in page
