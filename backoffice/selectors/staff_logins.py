"""Reads about how a staff login is protected: its authenticator, its recovery codes, whether
it has a second factor at all, and how long a throttled device makes it wait."""

from __future__ import annotations

import math
from typing import Any

from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice


def authenticator_of(user: Any) -> TOTPDevice | None:
    """The confirmed authenticator app of `user`, if enrolled."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def pending_authenticator_of(user: Any) -> TOTPDevice | None:
    """The authenticator being enrolled (shown as a QR code, not yet confirmed with a code)."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()


def recovery_codes_left(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def has_second_factor(user: Any) -> bool:
    """An authenticator, or recovery codes left to spend: a recovery device with none left can
    sign no one in, so it does not count (it would lock its owner out)."""
    if user is None or not user.is_authenticated:
        return False
    return (TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            or StaticToken.objects.filter(device__user=user, device__confirmed=True).exists())


def second_factor_retry_in(user: Any) -> int:
    """Seconds until a device of `user` throttled by wrong codes accepts one again (0: none is
    throttled). Each wrong code doubles the wait (django-otp's throttling)."""
    wait = 0.0
    devices: list[Device] = [*TOTPDevice.objects.filter(user=user, confirmed=True),
                             *StaticDevice.objects.filter(user=user, confirmed=True)]
    for device in devices:
        allowed, data = device.verify_is_allowed()
        until = (data or {}).get("locked_until")
        if not allowed and until is not None:
            wait = max(wait, (until - timezone.now()).total_seconds())
    return math.ceil(wait)
