"""`manage.py verify_export FILE [--public-key BASE64]`: check an evidence export.

Every file's sha256 against manifest.json, and manifest.sig against the key the manifest names:
one of this service's signing keys (the current one and the retired ones of
ZENTRA_SIGNING_KEYS_RETIRED), or only the key given. One line per mismatch; exit status 1 on any.
(scripts/verify_export.py is the same check without Django, for whoever received the file.)
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.services.exports import export_verify
from zentra.keys import signing_keys, signing_kid


class Command(BaseCommand):
    help = "Verify an evidence export's files against its manifest, and the manifest's Ed25519 signature."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the export's zip")
        parser.add_argument("--public-key", help="base64 of the 32 raw bytes of the Ed25519 public key to trust "
                                                 "(as GET /v1/signing_keys lists it); default: this service's keys")

    def handle(self, *args, file: str, public_key: str | None = None, **options) -> None:
        try:
            archive = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: cannot read ({exc.strerror or exc})") from exc
        if public_key:
            try:
                key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.strip(), validate=True))
            except (binascii.Error, ValueError) as exc:
                raise CommandError("--public-key: not base64 of a 32-byte Ed25519 public key") from exc
            keys = {signing_kid(key): key}
        else:
            keys = dict(signing_keys().public)
        result = export_verify(archive, keys)
        for problem in result.problems:
            self.stderr.write(f"FAIL {file}: {problem}")
        if not result.ok:
            raise CommandError(f"{file}: does not verify ({len(result.problems)} problem(s))")
        manifest = result.manifest
        self.stdout.write(f"OK {file}: {len(manifest['files'])} files match manifest.json, signed by key "
                          f"{manifest['kid']}; {manifest['resource']} from {manifest['from'] or 'the start'} to "
                          f"{manifest['to']}, created {manifest['created_at']}")
