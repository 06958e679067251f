"""Sign-in pages of the back office.

The password comes first (Django's login form, behind the lockout). A login with a second
factor is then not signed in yet: the session holds it as pending for a few minutes, and the
code page finishes the sign-in. A wrong code is refused with evidence and counts as a failed
sign-in towards the lockout, so a guesser who holds the password still gets ten tries.

The two-factor page enrols an authenticator app (QR code, confirmed with a code, then recovery
codes shown once), verifies a session that was signed in some other way, and issues new
recovery codes. With ZENTRA_REQUIRE_OTP=1 it is the only page (with logout) a staff login
without a second factor can reach.
"""

from __future__ import annotations

import time
from base64 import b32encode
from typing import Any
from urllib.parse import quote

from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME, get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from audit.actors import Actor
from backoffice.selectors.staff_logins import (
    authenticator_of,
    has_second_factor,
    recovery_codes_left,
    second_factor_retry_in,
)
from backoffice.services.staff_logins import (
    authenticator_pending_ensure,
    recovery_codes_renew,
    second_factor_verify,
    two_factor_enrol,
)

from .lockout import lockout_response, signin_denied
from .qr import qr_svg

PENDING = "zentra_signin_pending"
# Time to open an authenticator app and type its code; after it, the password is asked again.
PENDING_SECONDS = 300
# Pages a login without its second factor may still reach: where it gets one, and the way out.
OPEN_WITHOUT_SECOND_FACTOR = {"two-factor", "logout"}


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=32, label="Code",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "size": 12,
                                      "autocapitalize": "none", "spellcheck": "false"}))


class StaffLoginView(LoginView):
    """Django's login form; a login with a second factor goes on to the code page instead."""

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if not has_second_factor(user):
            return super().form_valid(form)
        self.request.session[PENDING] = {"user": user.pk, "backend": user.backend,
                                         "next": self.get_success_url(), "until": time.time() + PENDING_SECONDS}
        return HttpResponseRedirect(reverse("admin:login-code"))


def login(site: admin.AdminSite, request: HttpRequest,
          extra_context: dict[str, Any] | None = None) -> HttpResponseBase:
    """AdminSite.login, with the view above."""
    if request.method == "GET" and site.has_permission(request):
        return HttpResponseRedirect(reverse("admin:index", current_app=site.name))
    context = {**site.each_context(request), "title": "Log in", "subtitle": None,
               "app_path": request.get_full_path(), "username": request.user.get_username()}
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=site.name)
    context.update(extra_context or {})
    request.current_app = site.name
    return StaffLoginView.as_view(extra_context=context, authentication_form=site.login_form or AdminAuthenticationForm,
                                  template_name=site.login_template or "admin/login.html",
                                  next_page=reverse("admin:index", current_app=site.name))(request)


def login_code(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    """The second step of a sign-in: the code of the pending login's authenticator app, or one
    of its recovery codes."""
    pending = request.session.get(PENDING) or {}
    user = None
    if pending.get("user") is not None and pending.get("until", 0) > time.time():
        user = get_user_model().objects.filter(pk=pending["user"], is_active=True, is_staff=True).first()
    if user is None:
        request.session.pop(PENDING, None)
        messages.info(request, "Sign in again: the sign-in waiting for its code has expired.")
        return HttpResponseRedirect(reverse("admin:login", current_app=site.name))
    credentials = {"username": user.get_username()}
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if AxesProxyHandler.is_locked(request, credentials):
            # Locked meanwhile (by failures at the password step): no code is accepted, and the
            # attempt counts like any other made during a lockout.
            request.session.pop(PENDING, None)
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            return lockout_response(request, None, credentials)
        if form.is_valid():
            device = second_factor_verify(user=user, code=form.cleaned_data["code"])
            if device is not None:
                request.session.pop(PENDING, None)
                user.otp_device = device  # type: ignore[attr-defined]  # django-otp keeps it in the session at login
                auth_login(request, user, backend=pending["backend"])
                if isinstance(device, StaticDevice):
                    messages.warning(request, f"You signed in with a recovery code; it no longer works. "
                                              f"{recovery_codes_left(user)} left: get new ones on the "
                                              f"two-factor page.")
                return HttpResponseRedirect(pending["next"])
            signin_denied(request, username=user.get_username(), action="admin:login second factor",
                          reason="wrong, reused or throttled two-factor code")
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            if getattr(request, "axes_locked_out", False):
                request.session.pop(PENDING, None)
                return lockout_response(request, None, credentials)
            form.add_error("code", wrong_code(user))
    context = {**site.each_context(request), "title": "Two-factor code", "form": form,
               "username": user.get_username()}
    request.current_app = site.name
    return TemplateResponse(request, "admin/zentra/login_code.html", context)


def two_factor(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    """The signed-in user's own second factor: enrol, verify this session, or renew codes."""
    user = request.user
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    next_url = wanted if url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure()) \
        else reverse("admin:index", current_app=site.name)
    form = CodeForm(request.POST if request.method == "POST" else None)
    code = form.cleaned_data["code"] if form.is_valid() else None
    actor = Actor.for_user(user)
    context: dict[str, Any] = {**site.each_context(request), "title": "Two-factor authentication", "form": form,
                               "next": next_url, "required": settings.ZENTRA_REQUIRE_OTP}
    authenticator = authenticator_of(user)
    if has_second_factor(user) and not _verified(user):
        context["mode"] = "verify"
        if code is not None:
            device = second_factor_verify(user=user, code=code)
            if device is not None:
                otp_login(request, device)
                messages.success(request, "This session is verified with your second factor.")
                return HttpResponseRedirect(next_url)
            _refused(request, form, user, "verify this session")
    elif authenticator is None:
        context["mode"] = "enrol"
        pending = authenticator_pending_ensure(user=user)
        if code is not None:
            codes = two_factor_enrol(user=user, code=code, actor=actor)
            if codes is not None:
                otp_login(request, authenticator_of(user))
                return _codes_page(request, context, codes)
            _refused(request, form, user, "enrol")
        context.update(uri=pending.config_url, qr=qr_svg(pending.config_url), secret=_grouped(pending.bin_key))
    else:
        context.update(mode="status", authenticator=authenticator, codes_left=recovery_codes_left(user))
        if code is not None:
            codes = recovery_codes_renew(user=user, code=code, actor=actor)
            if codes is not None:
                return _codes_page(request, context, codes)
            _refused(request, form, user, "renew recovery codes")
    request.current_app = site.name
    return TemplateResponse(request, "admin/zentra/two_factor.html", context)


def second_factor_gate(site: admin.AdminSite, request: HttpRequest) -> HttpResponse | None:
    """Sends a staff login that has not given its second factor to the two-factor page: always
    when it has one (its sessions must prove it), and when ZENTRA_REQUIRE_OTP=1 makes one
    mandatory. None lets the request through."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff) or _verified(user):
        return None
    if request.resolver_match is not None and request.resolver_match.url_name in OPEN_WITHOUT_SECOND_FACTOR:
        return None
    if not settings.ZENTRA_REQUIRE_OTP and not has_second_factor(user):
        return None
    target = reverse("admin:two-factor", current_app=site.name)
    if request.method == "GET":
        target += "?" + REDIRECT_FIELD_NAME + "=" + quote(request.get_full_path(), safe="/")
    response = HttpResponseRedirect(target)
    add_never_cache_headers(response)
    return response


def wrong_code(user: Any) -> str:
    message = ("That code is not right, or was already used. Type the 6 digits your authenticator app shows now, "
               "or one of your recovery codes.")
    wait = second_factor_retry_in(user)
    if wait > 1:
        # Codes typed before then are refused unchecked; saying so spares a right code wasted.
        message += f" Wait {wait} s before the next one: each wrong code doubles the wait."
    return message


def _verified(user: Any) -> bool:
    """Whether this session gave the login's second factor (django-otp's middleware says)."""
    return bool(user.is_verified())


def _refused(request: HttpRequest, form: CodeForm, user: Any, what: str) -> None:
    signin_denied(request, username=user.get_username(), action=f"admin:two-factor {what}",
                  reason="wrong, reused or throttled two-factor code")
    form.add_error("code", wrong_code(user))


def _codes_page(request: HttpRequest, context: dict[str, Any], codes: list[str]) -> HttpResponse:
    """The recovery codes, in this response only: nothing keeps them to show again."""
    context.update(mode="codes", codes=codes)
    return TemplateResponse(request, "admin/zentra/two_factor.html", context)


def _grouped(key: bytes) -> str:
    """The secret as people type it into an app without a camera: base32 in groups of four."""
    text = b32encode(key).decode()
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))
