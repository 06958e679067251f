"""Sending deliveries: claim with a lease, sign, POST, record the attempt, schedule the retry.

Each batch resolves each endpoint's host once, checks every address it got, and connects only
to those (webhooks/transport.py); an address refused then is a failed attempt like any network
error (status 0, the reason in `error`), retried on the usual schedule, and nothing is sent.

No database transaction is open while a receiver is being called: the claim and the outcome
are two short transactions around the HTTP request. Retries are scheduled by writing
`next_attempt_at` (never a Celery countdown, which a Redis broker would re-run after its
visibility timeout); a worker that dies mid-request leaves a lease that simply runs out.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from audit.actors import Actor, acting_as

from ..addresses import AddressRefused, Resolver, system_resolve, url_target
from ..models import Delivery, DeliveryAttempt, WebhookEndpoint
from ..shapes import delivery_body, event_body
from ..signing import signature_header
from ..transport import PinnedTransport
from .endpoints import endpoint_set_status
from .outbox import event_emit

logger = logging.getLogger("zentra.webhooks")
RESPONSE_BODY_LIMIT = 2048
RETRY_AFTER_STATUSES = {429, 502, 504}
RECORD_EVERY_SECONDS = 0.05
SYSTEM = Actor.system("webhook_delivery")


def new_lease_owner() -> str:
    return f"lease_{uuid.uuid4().hex[:16]}"


def deliveries_claim(*, owner: str, limit: int = 100) -> list[str]:
    """Claim due deliveries of enabled endpoints: pending, due, and not leased (or the lease
    ran out because its worker died). SKIP LOCKED lets several relays run side by side."""
    # The application's clock, like every other time Zentra writes (next_attempt_at, leases).
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.ZENTRA_WEBHOOK_LEASE_SECONDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"""
            UPDATE {Delivery._meta.db_table} AS d SET lease_owner = %s, lease_expires_at = %s
            WHERE d.id IN (
                SELECT due.id FROM {Delivery._meta.db_table} AS due
                JOIN {WebhookEndpoint._meta.db_table} AS e ON e.id = due.endpoint_id
                WHERE due.status = 'pending' AND due.next_attempt_at <= %s
                  AND (due.lease_expires_at IS NULL OR due.lease_expires_at < %s)
                  AND e.status = 'enabled' AND e.deleted_at IS NULL
                ORDER BY due.next_attempt_at LIMIT %s FOR UPDATE OF due SKIP LOCKED)
            RETURNING d.id""", [owner, lease_until, now, now, limit])
        return [row[0] for row in cursor.fetchall()]


@dataclass
class Outcome:
    status_code: int
    duration_ms: int
    response_body: str
    error: str
    retry_after: int | None
    headers: dict


def _live_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets.append(endpoint.previous_secret)
    return secrets


def _retry_after(response: httpx.Response) -> int | None:
    raw = response.headers.get("retry-after", "")
    return int(raw) if raw.isdigit() else None


def _signed_headers(delivery: Delivery, body: bytes) -> dict:
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "user-agent": "Zentra-Webhooks/1",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(_live_secrets(delivery.endpoint, timezone.now()), delivery.event_id,
                                              timestamp, body),
    }


def _tls_context() -> ssl.SSLContext:
    """The trusted roots, loaded once per process and trust configuration (SSL_CERT_FILE and
    SSL_CERT_DIR, as OpenSSL reads them): loading them takes about 30 ms, as long as a whole
    delivery to a nearby receiver."""
    return _tls_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _tls_context_for(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return ssl.create_default_context()


def _client(endpoint: WebhookEndpoint, resolve: Resolver, *, connections: int) -> httpx.Client:
    """A client that reaches only the endpoint's addresses as resolved and checked now
    (AddressRefused otherwise), keeping up to `connections` of them alive between requests."""
    target = url_target(endpoint.url, resolve=resolve)
    return httpx.Client(transport=PinnedTransport(target, verify=_tls_context(), limits=httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections)),
        timeout=settings.ZENTRA_WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)


def _failed(started: float, headers: dict, error: str) -> Outcome:
    return Outcome(0, int((time.monotonic() - started) * 1000), "", error[:1000], None, headers)


def _post(client: httpx.Client, delivery: Delivery, body: bytes) -> Outcome:
    """One signed POST of the delivery's body through `client`; any failure is an Outcome."""
    headers = _signed_headers(delivery, body)
    started = time.monotonic()
    timeout = settings.ZENTRA_WEBHOOK_TIMEOUT_SECONDS
    try:
        with client.stream("POST", delivery.endpoint.url, content=body, headers=headers) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= RESPONSE_BODY_LIMIT or time.monotonic() - started > timeout:
                    break
        elapsed = time.monotonic() - started
        text = b"".join(chunks)[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace")
        if elapsed > timeout:
            # A receiver that trickles its answer past the deadline did not answer in time.
            return Outcome(response.status_code, int(elapsed * 1000), text, f"no complete answer within {timeout}s",
                           None, headers)
        return Outcome(response.status_code, int(elapsed * 1000), text, "", _retry_after(response), headers)
    except AddressRefused as exc:
        return _failed(started, headers, f"address refused: {exc}")
    except httpx.TimeoutException:
        return _failed(started, headers, f"timed out after {timeout}s")
    except httpx.HTTPError as exc:
        return _failed(started, headers, f"{exc.__class__.__name__}: {exc}")


def _next_delay(attempt_number: int, outcome: Outcome) -> float | None:
    """Seconds until the next attempt, or None when retries are exhausted."""
    schedule = settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE
    if attempt_number > len(schedule):
        return None
    delay = schedule[attempt_number - 1] * (1 + random.uniform(0, 0.2))
    if outcome.status_code in RETRY_AFTER_STATUSES and outcome.retry_after is not None:
        delay = min(max(outcome.retry_after, schedule[0]), settings.ZENTRA_WEBHOOK_MAX_RETRY_AFTER_SECONDS)
    return delay


def delivery_attempt(*, delivery_id: str, owner: str, resolve: Resolver = system_resolve) -> DeliveryAttempt | None:
    """Send one claimed delivery and record the outcome: deliveries_send with a batch of one,
    returning the attempt it recorded. None when the claim is no longer ours (another relay
    took it after our lease ran out) or nothing is due. `resolve` turns the endpoint's host
    into addresses (the system resolver; tests script their own)."""
    if not deliveries_send(delivery_ids=[delivery_id], owner=owner, resolve=resolve):
        return None
    return DeliveryAttempt.objects.filter(delivery_id=delivery_id).order_by("-number").first()


@transaction.atomic
def _record(*, delivery_id: str, owner: str, attempted_at: datetime, outcome: Outcome) -> DeliveryAttempt | None:
    with acting_as(SYSTEM):
        delivery = (Delivery.objects.select_for_update(of=("self",)).select_related("endpoint", "tenant")
                    .filter(pk=delivery_id).first())
        if delivery is None or delivery.status != Delivery.PENDING or delivery.lease_owner != owner:
            return None  # someone else finished it meanwhile; our attempt changes nothing
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        now = timezone.now()
        number = delivery.attempts_count + 1
        succeeded = _succeeded(outcome)
        delay = None if succeeded or outcome.status_code == 410 else _next_delay(number, outcome)
        next_at = now + timedelta(seconds=delay) if delay is not None else None
        attempt = DeliveryAttempt.objects.create(
            delivery=delivery, number=number, attempted_at=attempted_at, request_headers=outcome.headers,
            status_code=outcome.status_code, duration_ms=outcome.duration_ms, response_body=outcome.response_body,
            error=outcome.error or ("" if succeeded else f"HTTP {outcome.status_code}"), next_attempt_at=next_at)
        delivery.attempts_count = number
        delivery.lease_owner, delivery.lease_expires_at = "", None
        if succeeded:
            delivery.status, delivery.completed_at, delivery.next_attempt_at = Delivery.SUCCEEDED, now, None
            endpoint.last_success_at, endpoint.failing_since = now, None
            endpoint.save(update_fields=["last_success_at", "failing_since"])
        elif next_at is not None:
            delivery.next_attempt_at = next_at
        else:
            delivery.status, delivery.completed_at, delivery.next_attempt_at = Delivery.FAILED, now, None
        delivery.save(update_fields=["attempts_count", "lease_owner", "lease_expires_at", "status", "completed_at",
                                     "next_attempt_at"])
        if not succeeded:
            _after_failure(delivery, endpoint, outcome, now)
        return attempt


def deliveries_send(*, delivery_ids: Sequence[str], owner: str, resolve: Resolver = system_resolve,
                    concurrency: int | None = None) -> int:
    """Send claimed deliveries side by side: up to `concurrency` requests in flight, over one
    pool of keep-alive connections per endpoint (its host resolved and checked once for the
    batch, every connection pinned to those addresses). Successes are recorded as a set (one
    attempt row each, a few statements for the batch); any other outcome goes through the
    one-by-one path, which schedules the retry and may disable the endpoint. A delivery whose
    lease could run out before its answer is left unsent, for the next claim: never sent twice.
    Returns how many attempts were recorded."""
    concurrency = concurrency or settings.ZENTRA_WEBHOOK_CONCURRENCY
    deliveries = list(Delivery.objects.select_related("endpoint", "event", "tenant")
                      .filter(pk__in=list(delivery_ids), lease_owner=owner, status=Delivery.PENDING).order_by("pk"))
    if not deliveries:
        return 0
    clients: dict[str, httpx.Client | AddressRefused] = {}
    for delivery in deliveries:
        if delivery.endpoint_id not in clients:
            try:
                clients[delivery.endpoint_id] = _client(delivery.endpoint, resolve, connections=concurrency)
            except AddressRefused as exc:
                clients[delivery.endpoint_id] = exc
    # The last moment a request may start and still be answered (or time out) before the
    # lease runs out and another relay may claim the delivery again.
    lease, timeout = settings.ZENTRA_WEBHOOK_LEASE_SECONDS, settings.ZENTRA_WEBHOOK_TIMEOUT_SECONDS
    start_by = (min(d.lease_expires_at or timezone.now() for d in deliveries)
                - timedelta(seconds=min(timeout, lease / 2)))

    bodies = {d.id: json.dumps(event_body(d.event), separators=(",", ":")).encode() for d in deliveries}

    def attempt(delivery: Delivery) -> tuple[Delivery, datetime, Outcome] | None:
        if timezone.now() > start_by:
            return None
        body = bodies[delivery.id]
        attempted_at = timezone.now()
        client = clients[delivery.endpoint_id]
        if isinstance(client, AddressRefused):
            return delivery, attempted_at, _failed(time.monotonic(), _signed_headers(delivery, body),
                                                   f"address refused: {client}")
        return delivery, attempted_at, _post(client, delivery, body)

    recorded = 0
    try:
        # Threads only send; this thread alone uses the database, recording what has come back
        # every RECORD_EVERY seconds (so a slow receiver does not hold up the others' outcomes,
        # and a fast one's answers are recorded as sets, not one transaction each).
        pending = {_senders(concurrency).submit(attempt, delivery) for delivery in deliveries}
        while pending:
            done, pending = wait(pending, timeout=RECORD_EVERY_SECONDS)
            recorded += _record_outcomes([result for future in done if (result := future.result()) is not None],
                                         owner=owner)
    finally:
        for client in clients.values():
            if isinstance(client, httpx.Client):
                client.close()
    return recorded


@functools.cache
def _senders(concurrency: int) -> ThreadPoolExecutor:
    """The process's sending threads, started once (per worker process: Celery forks first)."""
    return ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook-send")


def _record_outcomes(sent: Sequence[tuple[Delivery, datetime, Outcome]], *, owner: str) -> int:
    """Successes as a set; any other outcome one by one (_record schedules the retry and may
    disable the endpoint)."""
    if not sent:
        return 0
    recorded = _record_successes([(d, at, outcome) for d, at, outcome in sent if _succeeded(outcome)], owner=owner)
    for delivery, attempted_at, outcome in sent:
        if not _succeeded(outcome):
            recorded += _record(delivery_id=delivery.id, owner=owner, attempted_at=attempted_at,
                                outcome=outcome) is not None
    return recorded


def _succeeded(outcome: Outcome) -> bool:
    return 200 <= outcome.status_code < 300 and not outcome.error


@transaction.atomic
def _record_successes(sent: Sequence[tuple[Delivery, datetime, Outcome]], *, owner: str) -> int:
    """_record for a set of successful attempts: the deliveries locked (still ours and
    pending), an attempt row each, the deliveries and their endpoints marked, one statement
    each."""
    if not sent:
        return 0
    with acting_as(SYSTEM):
        ours = {d.id: d for d in Delivery.objects.select_for_update().filter(
            pk__in=[d.id for d, _, _ in sent], status=Delivery.PENDING, lease_owner=owner).order_by("pk")}
        now = timezone.now()
        attempts = [DeliveryAttempt(delivery_id=d.id, number=ours[d.id].attempts_count + 1, attempted_at=at,
                                    request_headers=outcome.headers, status_code=outcome.status_code,
                                    duration_ms=outcome.duration_ms, response_body=outcome.response_body,
                                    error="", next_attempt_at=None)
                    for d, at, outcome in sent if d.id in ours]
        if not attempts:
            return 0
        DeliveryAttempt.objects.bulk_create(attempts)
        Delivery.objects.filter(pk__in=list(ours)).update(
            attempts_count=F("attempts_count") + 1, lease_owner="", lease_expires_at=None, status=Delivery.SUCCEEDED,
            completed_at=now, next_attempt_at=None)
        WebhookEndpoint.objects.filter(pk__in={d.endpoint_id for d in ours.values()}).update(
            last_success_at=now, failing_since=None)
        return len(attempts)


def _after_failure(delivery: Delivery, endpoint: WebhookEndpoint, outcome: Outcome, now: datetime) -> None:
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        endpoint.save(update_fields=["failing_since"])
    if delivery.status == Delivery.FAILED:
        # Not sent to the endpoint that failed it: that would feed a loop of failures.
        event_emit(tenant=delivery.tenant, type="webhook_delivery.failed", resource_id=delivery.id,
                   data_object=dict(delivery_body(delivery)), actor=SYSTEM,
                   exclude_endpoint_ids=frozenset({endpoint.id}))
    if outcome.status_code == 410:
        endpoint_set_status(endpoint, enabled=False, actor=SYSTEM, reason="the receiver answered 410 Gone")
    elif now - endpoint.failing_since >= timedelta(seconds=settings.ZENTRA_WEBHOOK_DISABLE_AFTER_SECONDS):
        endpoint_set_status(endpoint, enabled=False, actor=SYSTEM,
                            reason=f"every delivery failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC")


def relay_once(*, limit: int = 100, send: Callable[[list[str], str], object] | None = None) -> int:
    """Claim due deliveries and send them, in batches of ZENTRA_WEBHOOK_BATCH: each batch
    through `send(delivery_ids, owner)` (the Celery dispatch, a worker task per batch) or right
    here (the management command)."""
    owner = new_lease_owner()
    claimed = deliveries_claim(owner=owner, limit=limit)
    size = settings.ZENTRA_WEBHOOK_BATCH
    for start in range(0, len(claimed), size):
        batch = claimed[start:start + size]
        if send is not None:
            send(batch, owner)
        else:
            deliveries_send(delivery_ids=batch, owner=owner)
    return len(claimed)
