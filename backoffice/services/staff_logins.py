"""Writes that protect staff logins: enrolling a second factor, issuing recovery codes, checking
a code at sign-in, lifting a lockout. Each public function is one transaction, and each change
to a login's protection writes its StaffSecurityEvent inside it.

A wrong code is an answer, not an exception: django-otp counts it on the device (its throttle)
inside the same transaction, and raising would roll that count back, handing a guesser free
tries. Callers record the refusal as an AccessDenial.
"""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.actors import Actor
from audit.context import current_request_id
from zentra.errors import Conflict, NotFound

from ..models import StaffSecurityEvent

RECOVERY_CODES = 10
AUTHENTICATOR_NAME = "authenticator app"
RECOVERY_DEVICE_NAME = "recovery codes"


def authenticator_pending_ensure(*, user: Any) -> TOTPDevice:
    """The authenticator being enrolled, created on first sight and then kept until confirmed,
    so that the QR code a user scanned stays the one to confirm after a reload."""
    with transaction.atomic():
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise Conflict(f"{user.get_username()} already has an authenticator app")
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
        return device


def two_factor_enrol(*, user: Any, code: str, actor: Actor) -> list[str] | None:
    """Confirm the pending authenticator with a code it shows now, and issue recovery codes.

    Returns the recovery codes (raw: shown once, never again), or None when the code is wrong
    (nothing confirmed).
    """
    with transaction.atomic():
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise Conflict(f"{user.get_username()} already has an authenticator app")
        # Locked: two tabs confirming at once must not both pass (or both spend the same code).
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-id").first()
        if device is None:
            raise NotFound("No authenticator is being enrolled: open the enrolment page again")
        if not device.verify_token(_normalised(code)):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        codes = _recovery_codes_replace(user)
        _event(StaffSecurityEvent.TWO_FACTOR_ENROLLED, actor=actor, user=user,
               detail=f"authenticator app confirmed; {len(codes)} recovery codes issued")
        return codes


def recovery_codes_renew(*, user: Any, code: str, actor: Actor) -> list[str] | None:
    """New recovery codes (the old ones stop working), for a user who proves their authenticator
    with a current code. None when the code is wrong (nothing changed)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("id").first()
        if device is None:
            raise NotFound(f"{user.get_username()} has no authenticator app")
        if not device.verify_token(_normalised(code)):
            return None
        codes = _recovery_codes_replace(user)
        _event(StaffSecurityEvent.RECOVERY_CODES_ISSUED, actor=actor, user=user,
               detail=f"{len(codes)} new recovery codes; the previous ones no longer work")
        return codes


def second_factor_verify(*, user: Any, code: str) -> Device | None:
    """The device of `user` that accepts `code`, or None.

    Six digits are the authenticator's; anything else is tried as a recovery code, which is
    spent by its use (and the spending recorded). Routing by shape keeps a mistyped code from
    counting against the device it was never meant for.
    """
    code = _normalised(code)
    with transaction.atomic():
        devices: list[Device]
        if len(code) == 6 and code.isdigit():
            devices = list(TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True))
        else:
            devices = list(StaticDevice.objects.select_for_update().filter(user=user, confirmed=True))
        matched = next((device for device in devices if device.verify_token(code)), None)
        if isinstance(matched, StaticDevice):
            left = StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
            _event(StaffSecurityEvent.RECOVERY_CODE_USED, actor=Actor.for_user(user), user=user,
                   detail=f"signed in with a recovery code; {left} left")
        return matched


def login_lockout_reset(*, username: str | None, ip_address: str | None, actor: Actor,
                        reason: str) -> StaffSecurityEvent:
    """Lift the lockout of one username at one address: its failure counters go (the failure
    log stays), and the event names who lifted it, for whom, and why."""
    with transaction.atomic():
        # Exactly this pair, NULLs included: axes' own reset drops a filter it is given no value
        # for, and would clear every lockout at once.
        attempts = AccessAttempt.objects.select_for_update().filter(username=username, ip_address=ip_address)
        failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
        attempts.delete()
        user = get_user_model().objects.filter(username=username).first() if username else None
        return _event(StaffSecurityEvent.LOCKOUT_RESET, actor=actor, user=user, username=username or "",
                      ip_address=ip_address, detail=f"{failures} failed sign-ins cleared", reason=reason)


def _recovery_codes_replace(user: Any) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes: list[str] = []
    while len(codes) < RECOVERY_CODES:
        token = StaticToken.random_token()
        if token not in codes:
            codes.append(token)
    StaticToken.objects.bulk_create([StaticToken(device=device, token=token) for token in codes])
    return codes


def _normalised(code: str) -> str:
    """What people type: spaces or a hyphen inside a code, upper case letters."""
    return "".join(code.split()).replace("-", "").lower()


def _event(kind: str, *, actor: Actor, user: Any, username: str = "", ip_address: str | None = None,
           detail: str = "", reason: str = "") -> StaffSecurityEvent:
    return StaffSecurityEvent.objects.create(
        kind=kind, actor=str(actor)[:200], actor_label=actor.label[:200],
        user_id=user.pk if user is not None else None,
        username=(user.get_username() if user is not None else username)[:150],
        ip_address=ip_address, detail=detail[:500], reason=reason[:500], request_id=current_request_id() or "",
    )
