"""The service's two keys (docs/architecture.md, "Evidence"; docs/security.md).

- The ledger key (`ZENTRA_LEDGER_KEY`, any long random string): HMAC-SHA256 over each entry's
  chain link. Its id is the first 8 hex digits of its SHA-256. Keys rotated out stay listed in
  `ZENTRA_LEDGER_KEYS_RETIRED` (comma-separated) so the entries they chained still verify:
  rotation rewrites nothing.
- The signing key (`ZENTRA_SIGNING_KEY`, an Ed25519 private key as base64 of its 32 raw bytes):
  signs checkpoints and evidence. Its `kid` is the first 16 hex digits of the SHA-256 of the
  public key. Public keys of retired signing keys stay in `ZENTRA_SIGNING_KEYS_RETIRED` (base64
  raw public keys) so what they signed still verifies.

Both are required in production (settings.REQUIRED_IN_PRODUCTION). A development or test process
without them derives stand-ins from its SECRET_KEY, so every process of one local stack agrees.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

LEGACY_KEY_ID = "legacy"  # entries chained with plain SHA-256, before the ledger had a key
SIGNING_ALGORITHM = "Ed25519"


def ledger_key_id(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:8]


@dataclass(frozen=True)
class LedgerKeyring:
    current_id: str
    secrets: dict[str, bytes]

    def link(self, key_id: str, message: str) -> str:
        """The chain link of `message` under `key_id` (KeyError for a key this process lacks)."""
        if key_id == LEGACY_KEY_ID:
            return hashlib.sha256(message.encode()).hexdigest()
        return hmac.new(self.secrets[key_id], message.encode(), hashlib.sha256).hexdigest()


def _ledger_secrets() -> tuple[bytes, list[bytes]]:
    current = settings.ZENTRA_LEDGER_KEY or f"development-ledger-key:{settings.SECRET_KEY}"
    retired = [k.strip() for k in settings.ZENTRA_LEDGER_KEYS_RETIRED.split(",") if k.strip()]
    return current.encode(), [k.encode() for k in retired]


@cache
def ledger_keyring() -> LedgerKeyring:
    current, retired = _ledger_secrets()
    secrets = {ledger_key_id(secret): secret for secret in [*retired, current]}
    return LedgerKeyring(current_id=ledger_key_id(current), secrets=secrets)


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def signing_kid(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKeys:
    current: Ed25519PrivateKey
    kid: str
    public: dict[str, Ed25519PublicKey]  # kid -> key, the current one and every retired one

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.current.sign(message)).decode()

    def verify(self, kid: str, message: bytes, signature: str) -> bool:
        public = self.public.get(kid)
        if public is None:
            return False
        try:
            public.verify(base64.b64decode(signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def listing(self) -> list[dict[str, str]]:
        return [{"kid": kid, "algorithm": SIGNING_ALGORITHM,
                 "public_key": base64.b64encode(_raw_public(public)).decode(),
                 "status": "current" if kid == self.kid else "retired"}
                for kid, public in sorted(self.public.items(), key=lambda item: item[0] != self.kid)]


def _decode_key(name: str, value: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be base64 of 32 raw key bytes") from exc
    if len(raw) != 32:
        raise ImproperlyConfigured(f"{name} must be base64 of 32 raw key bytes, got {len(raw)} bytes")
    return raw


@cache
def signing_keys() -> SigningKeys:
    if settings.ZENTRA_SIGNING_KEY:
        private = Ed25519PrivateKey.from_private_bytes(_decode_key("ZENTRA_SIGNING_KEY", settings.ZENTRA_SIGNING_KEY))
    else:
        seed = hashlib.sha256(f"development-signing-key:{settings.SECRET_KEY}".encode()).digest()
        private = Ed25519PrivateKey.from_private_bytes(seed)
    public = {signing_kid(private.public_key()): private.public_key()}
    for value in settings.ZENTRA_SIGNING_KEYS_RETIRED.split(","):
        if value.strip():
            retired = Ed25519PublicKey.from_public_bytes(_decode_key("ZENTRA_SIGNING_KEYS_RETIRED", value))
            public[signing_kid(retired)] = retired
    return SigningKeys(current=private, kid=signing_kid(private.public_key()), public=public)


def new_signing_key() -> str:
    """A fresh ZENTRA_SIGNING_KEY value (make .env, docs/security.md)."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def _keys_changed(*, setting: str, **kwargs) -> None:
    # Tests rotate keys with override_settings; the cached keyrings must follow.
    if setting.startswith(("ZENTRA_LEDGER_KEY", "ZENTRA_SIGNING_KEY", "SECRET_KEY")):
        ledger_keyring.cache_clear()
        signing_keys.cache_clear()


setting_changed.connect(_keys_changed)
