"""Idempotency-Key handling, exactly as docs/api.md says.

A POST claims its key in a committed transaction of its own before the handler runs:
a concurrent request with the same key then finds the claim and gets 409. The answer is
stored afterwards (4xx included, 5xx never, so a 500 can be retried). A claim whose
process died stops blocking the key once its lease runs out, and is taken over, unless its
change had committed. Every change writes its event (the outbox) in its own transaction,
stamped with the id of the request that caused it; so "an event of this request exists" is
exactly "its change committed", and such a key is never run twice (409
idempotency_outcome_unknown). The domain knows nothing of this: it only records request ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.response import Response

from webhooks.models import Event

from .errors import (
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    IdempotencyOutcomeUnknown,
    IdempotencyRequestInProgress,
)
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"


class IdempotentReplay(Exception):
    """Raised to short-circuit the view with the stored answer."""

    def __init__(self, record: IdempotencyKey):
        self.record = record
        super().__init__(record.key)

    def response(self) -> Response:
        return Response(self.record.response_body, status=self.record.response_status,
                        content_type=self.record.response_content_type or None,
                        headers={REPLAY_HEADER: "true"})


@dataclass
class Claim:
    record_id: int
    key: str
    tenant_id: str
    request_id: str
    claimed_at: datetime


def effect_committed(*, tenant_id: str, request_id: str, since: datetime) -> bool:
    """Did the request's change commit? Its event says so (see the module docstring)."""
    return bool(request_id) and Event.objects.filter(tenant_id=tenant_id, request_id=request_id,
                                                     created_at__gte=since).exists()


# The keys parse_key accepts, as the OpenAPI document states them (tests/api/test_idempotency.py
# holds the two to the same answer): a bare key of 1..255 printable ASCII characters, without
# surrounding spaces and not itself a quoted string, or an RFC 8941 quoted string whose content
# (with its two escapes, backslash-quote and backslash-backslash, one character each) is 1..255
# of them.
KEY_PATTERN = (r'^(?:[!-~]|[!#-~][ -~]{0,253}[!-~]|"[ -~]{0,253}[!#-~]'
               r'|"(?:[ !#-\[\]-~]|\\["\\]){1,255}")$')


def parse_key(raw: str | None) -> str:
    """Accepts a bare key or an RFC 8941 sf-string ("..." with \\" and \\\\ escapes)."""
    if raw is None or raw == "":
        raise IdempotencyKeyRequired("POST requests need an Idempotency-Key header")
    # Only HTTP's own optional whitespace around a field value: str.strip() would also drop
    # control characters (\x1f) that make the key unprintable.
    value = raw.strip(" \t")
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner, out, escaped = value[1:-1], [], False
        for char in inner:
            if escaped:
                if char not in '"\\':
                    raise IdempotencyKeyRequired("Idempotency-Key is not a valid quoted string")
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                raise IdempotencyKeyRequired("Idempotency-Key is not a valid quoted string")
            else:
                out.append(char)
        if escaped:
            raise IdempotencyKeyRequired("Idempotency-Key is not a valid quoted string")
        value = "".join(out)
    if not 1 <= len(value) <= 255 or any(not (0x20 <= ord(c) <= 0x7E) for c in value):
        raise IdempotencyKeyRequired("Idempotency-Key must be 1 to 255 printable ASCII characters")
    return value


def fingerprint_of(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except (ValueError, UnicodeDecodeError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), b"\n", path.encode(), b"\n", canonical):
        digest.update(part)
    return digest.hexdigest()


def idempotency_begin(*, tenant_id: str, raw_key: str | None, method: str, path: str, body: bytes,
                      request_id: str) -> Claim:
    key = parse_key(raw_key)
    fingerprint = fingerprint_of(method, path, body)
    now = timezone.now()
    lease_end = now + settings.ZENTRA_IDEMPOTENCY_LEASE
    expires_at = now + settings.ZENTRA_IDEMPOTENCY_TTL
    # The claim is one statement that commits on its own (autocommit): every POST pays for it.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {IdempotencyKey._meta.db_table}
                (tenant_id, key, method, path, fingerprint, status, locked_until, response_content_type,
                 request_id, created_at, expires_at)
                VALUES (%s, %s, %s, %s, %s, 'in_progress', %s, '', %s, %s, %s)
                ON CONFLICT (tenant_id, key) DO NOTHING RETURNING id""",
            [tenant_id, key, method, path, fingerprint, lease_end, request_id, now, expires_at],
        )
        row = cursor.fetchone()
    if row:
        return Claim(record_id=row[0], key=key, tenant_id=tenant_id, request_id=request_id, claimed_at=now)
    # The key was used before: decide under its row lock.
    with transaction.atomic():
        record = IdempotencyKey.objects.select_for_update().get(tenant_id=tenant_id, key=key)
        if record.expires_at <= now:
            # Past retention but not yet purged: the key is free again.
            record.method, record.path, record.fingerprint = method, path, fingerprint
            record.status, record.response_status, record.response_body = IdempotencyKey.IN_PROGRESS, None, None
            record.locked_until, record.expires_at, record.request_id = lease_end, expires_at, request_id
            record.created_at = now
            record.save()
            return Claim(record_id=record.pk, key=key, tenant_id=tenant_id, request_id=request_id, claimed_at=now)
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was used for a different request ({record.method} {record.path})")
        if record.status == IdempotencyKey.COMPLETED:
            raise IdempotentReplay(record)
        if record.locked_until > now:
            raise IdempotencyRequestInProgress(
                f"A request with Idempotency-Key {key!r} is still in progress; retry shortly",
                headers={"Retry-After": "1"})
        if effect_committed(tenant_id=tenant_id, request_id=record.request_id, since=record.created_at):
            # Its change committed but its answer was never stored (the process died, or the
            # answer failed after the commit): running it again would do it twice.
            raise IdempotencyOutcomeUnknown(
                f"The request with Idempotency-Key {key!r} took effect but its answer was lost; look the object up "
                f"(request {record.request_id}) instead of retrying")
        # Taken over: from now on the key's events are those of this request.
        record.locked_until, record.request_id, record.created_at = lease_end, request_id, now
        record.save(update_fields=["locked_until", "request_id", "created_at"])
        return Claim(record_id=record.pk, key=key, tenant_id=tenant_id, request_id=request_id, claimed_at=now)


def idempotency_finish(claim: Claim, response: Response) -> None:
    if response.status_code >= 500:
        # Not stored, so the client can retry, unless the change already committed: then the
        # claim stays, and a retry learns the outcome is unknown instead of doing it twice.
        if effect_committed(tenant_id=claim.tenant_id, request_id=claim.request_id, since=claim.claimed_at):
            IdempotencyKey.objects.filter(pk=claim.record_id).update(locked_until=timezone.now())
        else:
            IdempotencyKey.objects.filter(pk=claim.record_id, status=IdempotencyKey.IN_PROGRESS).delete()
        return
    idempotency_answer(claim, response.status_code, getattr(response, "data", None),
                       content_type=getattr(response, "content_type", None) or "")


def idempotency_answer(claim: Claim, status: int, body: Any, *, content_type: str = "") -> None:
    """Store the answer, in the caller's transaction: after the change (idempotency_finish), or
    inside the change's own, so the two commit together (zentra/db/before_commit.py)."""
    IdempotencyKey.objects.filter(pk=claim.record_id).update(
        status=IdempotencyKey.COMPLETED, response_status=status, response_body=body,
        response_content_type=content_type)


def idempotency_keys_purge(*, now=None) -> int:
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
