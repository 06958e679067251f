"""Provider adapters: submit a payment, ask its status. Built-in sandbox providers are
deterministic: they do what their admin-controlled mode says."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from .models import PaymentIntent, Provider, ProviderRoute

SIGNATURE_HEADER = "Zentra-Provider-Signature"
TOLERANCE_SECONDS = 300


class ProviderUnavailable(Exception):
    """The provider could not take the request (an outage, a connection error)."""


class ProviderTimeout(Exception):
    """The provider did not answer in time."""


@dataclass
class SubmitResult:
    accepted: bool
    reference: str = ""
    reason: str = ""


class ProviderAdapter(Protocol):
    def submit(self, *, intent: PaymentIntent, route: ProviderRoute) -> SubmitResult: ...

    def status(self, *, reference: str) -> str: ...


class SandboxAdapter:
    def __init__(self, provider: Provider):
        self.provider = provider

    def submit(self, *, intent: PaymentIntent, route: ProviderRoute) -> SubmitResult:
        if self.provider.outage:
            raise ProviderUnavailable(f"{self.provider.name} is in an outage")
        if self.provider.mode == Provider.TIMEOUT:
            raise ProviderTimeout(f"{self.provider.name} did not answer")
        if self.provider.mode == Provider.DECLINE:
            return SubmitResult(accepted=False, reason=f"{self.provider.name} declined the payment")
        return SubmitResult(accepted=True, reference=f"sbx_{uuid.uuid4().hex[:20]}")

    def status(self, *, reference: str) -> str:
        return "accepted"


ADAPTERS = {"sandbox": SandboxAdapter}


def adapter_for(provider: Provider) -> ProviderAdapter:
    return ADAPTERS[provider.kind](provider)


def sign_event(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_event(secret: str, body: bytes, header: str, *, now: float | None = None) -> str | None:
    """None when the signature is good and fresh, otherwise why not."""
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, signature = parts.get("t", ""), parts.get("v1", "")
    # ASCII digits and hex only: str.isdigit() also takes "²", and compare_digest refuses non-ASCII.
    if not (timestamp.isascii() and timestamp.isdigit()) or not signature:
        return "malformed signature header"
    if abs((now or time.time()) - int(timestamp)) > TOLERANCE_SECONDS:
        return "timestamp outside the 5-minute tolerance"
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not signature.isascii():
        return "signature does not match"
    return None if hmac.compare_digest(expected, signature) else "signature does not match"


def sandbox_event_body(*, event_type: str, intent: PaymentIntent) -> bytes:
    return json.dumps({"id": f"pevt_{uuid.uuid4().hex}", "type": event_type, "intent": intent.id,
                       "reference": intent.provider_reference, "amount": intent.amount,
                       "currency": intent.currency}, separators=(",", ":")).encode()
