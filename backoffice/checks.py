"""`manage.py check --deploy`: what Django's own checks cannot know about staff sign-in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def second_factor_required(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if settings.ZENTRA_REQUIRE_OTP:
        return []
    return [Warning(
        "ZENTRA_REQUIRE_OTP is off: staff can sign in to the back office with a password alone.",
        hint="Set ZENTRA_REQUIRE_OTP=1: every staff login then enrols an authenticator app at its next sign-in.",
        id="zentra.W001",
    )]
