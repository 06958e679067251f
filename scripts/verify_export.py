#!/usr/bin/env python3
"""Verify a Zentra evidence export offline, without Zentra: only Python 3.9+ and `cryptography`.

    python verify_export.py exp_....zip --keys signing_keys.json
    python verify_export.py exp_....zip --public-key BASE64

`signing_keys.json` is what `GET /v1/signing_keys` answers (no API key needed); `--public-key` is
one of its `public_key` values. The manifest names the key that signed it (`kid`, the first 16
hex digits of the SHA-256 of the raw public key), the key must be one of those given.

Checks: manifest.sig is a valid Ed25519 signature of the exact bytes of manifest.json; every
file the manifest lists is in the zip with that sha256; the zip holds nothing else. Prints one
line per problem and exits 1, or prints OK and exits 0.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import sys
import zipfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"


def kid_of(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def load_keys(keys_file: str | None, public_key: str | None) -> dict[str, bytes]:
    """kid -> raw public key bytes."""
    raws: list[str] = []
    if public_key:
        raws.append(public_key)
    if keys_file:
        with open(keys_file, encoding="utf-8") as handle:
            listing = json.load(handle)
        raws.extend(key["public_key"] for key in listing.get("data", listing if isinstance(listing, list) else []))
    keys = {}
    for raw in raws:
        decoded = base64.b64decode(raw.strip(), validate=True)
        if len(decoded) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        keys[kid_of(decoded)] = decoded
    return keys


def verify(archive: bytes, keys: dict[str, bytes]) -> tuple[dict, list[str]]:
    problems: list[str] = []
    try:
        zipped = zipfile.ZipFile(io.BytesIO(archive))
        names = zipped.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        return {}, [f"not a readable zip file ({exc})"]
    blobs: dict[str, bytes] = {}
    for name in names:
        if name in blobs:
            problems.append(f"{name}: appears twice in the zip")
        blobs[name] = zipped.read(name)
    if MANIFEST not in blobs or SIGNATURE not in blobs:
        return {}, problems + [f"{MANIFEST} or {SIGNATURE} is missing"]
    try:
        manifest = json.loads(blobs[MANIFEST])
        files = dict(manifest["files"])
        kid = str(manifest["kid"])
    except (ValueError, KeyError, TypeError) as exc:
        return {}, problems + [f"{MANIFEST}: not a manifest ({exc})"]
    if kid not in keys:
        problems.append(f"{SIGNATURE}: no public key with kid {kid} (given: {', '.join(sorted(keys)) or 'none'})")
    else:
        try:
            signature = base64.b64decode(blobs[SIGNATURE].strip(), validate=True)
            Ed25519PublicKey.from_public_bytes(keys[kid]).verify(signature, blobs[MANIFEST])
        except (InvalidSignature, binascii.Error, ValueError):
            problems.append(f"{SIGNATURE}: the signature does not match {MANIFEST} under key {kid}")
    for name, expected in sorted(files.items()):
        if name not in blobs:
            problems.append(f"{name}: listed in {MANIFEST} but missing from the zip")
        elif hashlib.sha256(blobs[name]).hexdigest() != expected:
            problems.append(f"{name}: sha256 {hashlib.sha256(blobs[name]).hexdigest()} does not match "
                            f"{MANIFEST} ({expected})")
    for name in sorted(set(blobs) - set(files) - {MANIFEST, SIGNATURE}):
        problems.append(f"{name}: in the zip but not in {MANIFEST}")
    return manifest, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Zentra evidence export offline.")
    parser.add_argument("file", help="the export's zip")
    parser.add_argument("--keys", help="the saved answer of GET /v1/signing_keys (JSON)")
    parser.add_argument("--public-key", help="one public key, base64 of its 32 raw bytes")
    args = parser.parse_args(argv)
    if not args.keys and not args.public_key:
        parser.error("give --keys or --public-key")
    try:
        keys = load_keys(args.keys, args.public_key)
        with open(args.file, "rb") as handle:
            archive = handle.read()
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        print(f"FAIL {args.file}: {exc}", file=sys.stderr)
        return 2
    manifest, problems = verify(archive, keys)
    for problem in problems:
        print(f"FAIL {args.file}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"OK {args.file}: {len(manifest['files'])} files match {MANIFEST}, signed by key {manifest['kid']}; "
          f"{manifest['resource']} from {manifest['from'] or 'the start'} to {manifest['to']}, "
          f"created {manifest['created_at']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
