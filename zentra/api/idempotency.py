"""Idempotency-Key handling, exactly as API.md says.

A POST claims its key in a committed transaction of its own before the handler runs:
a concurrent request with the same key then finds the claim and gets 409. The answer is
stored afterwards (4xx included, 5xx never, so a 500 can be retried). A claim whose
process died stops blocking the key once its lease runs out, and is taken over, unless its
change had committed: the outbox write of that change marked the claim `effect_committed`
in the same transaction, and such a key is never run twice (409 idempotency_outcome_unknown).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.response import Response

from .errors import (IdempotencyKeyRequired, IdempotencyKeyReused, IdempotencyOutcomeUnknown,
                     IdempotencyRequestInProgress)
from .models import IdempotencyKey

HEADER = "Idempotency-Key"

# The claim of the request being served: the outbox marks it `effect_committed` inside the
# transaction of the change (webhooks.services.event_emit), so the mark and the effect commit
# or roll back together.
_current_claim: contextvars.ContextVar[int | None] = contextvars.ContextVar("zentra_idempotency_claim",
                                                                            default=None)


def current_claim_id() -> int | None:
    return _current_claim.get()
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


def parse_key(raw: str | None) -> str:
    """Accepts a bare key or an RFC 8941 sf-string ("..." with \\" and \\\\ escapes)."""
    if raw is None or raw == "":
        raise IdempotencyKeyRequired("POST requests need an Idempotency-Key header")
    value = raw.strip()
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
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {IdempotencyKey._meta.db_table}
                    (tenant_id, key, method, path, fingerprint, status, locked_until, response_content_type,
                     request_id, created_at, expires_at, effect_committed)
                    VALUES (%s, %s, %s, %s, %s, 'in_progress', %s, '', %s, %s, %s, false)
                    ON CONFLICT (tenant_id, key) DO NOTHING RETURNING id""",
                [tenant_id, key, method, path, fingerprint, lease_end, request_id, now, expires_at],
            )
            row = cursor.fetchone()
        if row:
            return Claim(record_id=row[0], key=key)
        record = IdempotencyKey.objects.select_for_update().get(tenant_id=tenant_id, key=key)
        if record.expires_at <= now:
            # Past retention but not yet purged: the key is free again.
            record.method, record.path, record.fingerprint = method, path, fingerprint
            record.status, record.response_status, record.response_body = IdempotencyKey.IN_PROGRESS, None, None
            record.effect_committed = False
            record.locked_until, record.expires_at, record.request_id = lease_end, expires_at, request_id
            record.created_at = now
            record.save()
            return Claim(record_id=record.pk, key=key)
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was used for a different request ({record.method} {record.path})")
        if record.status == IdempotencyKey.COMPLETED:
            raise IdempotentReplay(record)
        if record.locked_until > now:
            raise IdempotencyRequestInProgress(
                f"A request with Idempotency-Key {key!r} is still in progress; retry shortly",
                headers={"Retry-After": "1"})
        if record.effect_committed:
            # Its change committed but its answer was never stored (the process died, or the
            # answer failed after the commit): running it again would do it twice.
            raise IdempotencyOutcomeUnknown(
                f"The request with Idempotency-Key {key!r} took effect but its answer was lost; look the object up "
                f"(request {record.request_id}) instead of retrying")
        record.locked_until, record.request_id = lease_end, request_id
        record.save(update_fields=["locked_until", "request_id"])
        return Claim(record_id=record.pk, key=key)


def claim_activate(claim: Claim):
    return _current_claim.set(claim.record_id)


def claim_deactivate(token) -> None:
    _current_claim.reset(token)


def idempotency_finish(claim: Claim, response) -> None:
    if response.status_code >= 500:
        # Not stored, so the client can retry, unless the change already committed: then the
        # claim stays, and a retry learns the outcome is unknown instead of doing it twice.
        IdempotencyKey.objects.filter(pk=claim.record_id, status=IdempotencyKey.IN_PROGRESS,
                                      effect_committed=False).delete()
        IdempotencyKey.objects.filter(pk=claim.record_id).update(locked_until=timezone.now())
        return
    IdempotencyKey.objects.filter(pk=claim.record_id).update(
        status=IdempotencyKey.COMPLETED,
        response_status=response.status_code,
        response_body=getattr(response, "data", None),
        response_content_type=getattr(response, "content_type", None) or "",
    )


def idempotency_keys_purge(*, now=None) -> int:
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
