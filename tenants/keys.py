"""API key format: `zk_<prefix>_<secret>`; the prefix finds the row, the hash proves the key."""

import hashlib
import hmac
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
PREFIX_LENGTH = 12
SECRET_LENGTH = 32


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def api_key_material() -> tuple[str, str, str]:
    """Returns (raw key, prefix, hash)."""
    prefix = _random(PREFIX_LENGTH)
    raw = f"zk_{prefix}_{_random(SECRET_LENGTH)}"
    return raw, prefix, hash_key(raw)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_prefix(raw: str) -> str | None:
    if not raw.startswith("zk_"):
        return None
    prefix, sep, secret = raw[3:].partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or len(secret) != SECRET_LENGTH:
        return None
    if not (prefix.isalnum() and secret.isalnum() and prefix.isascii() and secret.isascii()):
        return None
    return prefix


def key_matches(raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(raw), stored_hash)
