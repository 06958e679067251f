"""A second factor for staff (django-otp): enrolment in the admin with a QR code, confirmed by a
real TOTP computed here from the secret the page shows (RFC 6238, independently of django-otp);
sign-in asks for the code once enrolled; recovery codes work once; ZENTRA_REQUIRE_OTP=1 leaves
a login without one nothing but enrolment and logout."""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
import time
from base64 import b32decode
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AccessDenial
from backoffice.models import StaffSecurityEvent

pytestmark = pytest.mark.django_db

TWO_FACTOR = "/admin/two-factor/"


def totp(secret: str, *, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 with SHA-1, as authenticator apps compute it."""
    key = b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 10 ** digits:0{digits}d}"


def wrong_code(secret: str) -> str:
    """A code no step of the accepted window (one step either side) shows."""
    near = {totp(secret, at=time.time() + drift) for drift in (-30, 0, 30)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


def sign_in(client: Client, username: str, password: str):
    return client.post(reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"})


def enrol(client: Client, clock) -> tuple[str, list[str]]:
    """Enrols the signed-in user; returns the secret and the recovery codes."""
    page = client.get(TWO_FACTOR).content.decode()
    uri = unescape(re.search(r'href="(otpauth://[^"]+)"', page).group(1))
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    codes_page = client.post(TWO_FACTOR, {"code": totp(secret)})
    assert codes_page.status_code == 200, codes_page.content.decode()[:2000]
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", codes_page.content.decode())
    # The code just used cannot sign in again: the next one is a step later.
    clock.forward(30)
    return secret, codes


@pytest.fixture
def operator(tenant_a):
    return tenant_a.member("operator")  # password "pw-operator"


@pytest.fixture
def enrolled(operator, clock):
    client = Client()
    client.force_login(operator)
    secret, codes = enrol(client, clock)
    return secret, codes


def test_enrolment_shows_a_qr_code_and_confirms_with_a_real_totp(client, operator, clock):
    client.force_login(operator)
    # given: the page shows the otpauth:// link, its QR code inline and the key
    page = client.get(TWO_FACTOR).content.decode()
    uri = unescape(re.search(r'href="(otpauth://[^"]+)"', page).group(1))
    parsed = urlparse(uri)
    params = parse_qs(parsed.query)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert parsed.path == f"/Zentra%3A{operator.username}" and params["issuer"] == ["Zentra"]
    assert '<svg class="zqr"' in page and "<img" not in page.split('id="content-main"')[1]
    secret = params["secret"][0]
    # and a reload shows the same secret (the one the phone scanned)
    assert secret in unescape(client.get(TWO_FACTOR).content.decode())
    # when: a wrong code
    refused = client.post(TWO_FACTOR, {"code": wrong_code(secret)})
    # then: refused with evidence, nothing confirmed
    assert refused.status_code == 200 and "not right" in refused.content.decode()
    assert not TOTPDevice.objects.filter(user=operator, confirmed=True).exists()
    assert AccessDenial.objects.filter(action="admin:two-factor enrol", target=f"user:{operator.pk}").count() == 1
    # when: the code the app shows now (after the one-second wait a wrong code costs)
    clock.forward(2)
    done = client.post(TWO_FACTOR, {"code": totp(secret)})
    # then: ten recovery codes, shown this once, and the evidence of the enrolment
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", done.content.decode())
    assert len(set(codes)) == 10
    assert TOTPDevice.objects.filter(user=operator, confirmed=True).count() == 1
    assert StaticToken.objects.filter(device__user=operator).count() == 10
    event = StaffSecurityEvent.objects.get(kind=StaffSecurityEvent.TWO_FACTOR_ENROLLED)
    assert (event.user_id, event.actor) == (operator.pk, f"user:{operator.pk}")
    status = client.get(TWO_FACTOR).content.decode()
    assert "10 recovery codes left" in status and codes[0] not in status
    assert client.get(reverse("admin:index")).status_code == 200


def test_sign_in_asks_for_the_code_once_enrolled(client, operator, enrolled, clock):
    secret, _ = enrolled
    # when: the right password
    first = sign_in(client, operator.username, "pw-operator")
    # then: not signed in yet; the code page asks
    assert first.status_code == 302 and first["Location"] == reverse("admin:login-code")
    assert client.get(reverse("admin:index")).status_code == 302
    assert "authenticator app" in client.get(reverse("admin:login-code")).content.decode()
    # when: a wrong code, then (after its one-second wait) the right one
    wrong = client.post(reverse("admin:login-code"), {"code": wrong_code(secret)})
    assert wrong.status_code == 200 and "not right" in wrong.content.decode()
    assert AccessDenial.objects.filter(action="admin:login second factor").count() == 1
    assert AccessAttempt.objects.get(username=operator.username).failures_since_start == 1
    clock.forward(2)
    code = totp(secret)
    right = client.post(reverse("admin:login-code"), {"code": code})
    # then
    assert right.status_code == 302 and right["Location"] == "/admin/"
    assert client.get(reverse("admin:index")).status_code == 200
    # and the same code does not sign in a second session (the very code, even if a new 30-second
    # step has begun meanwhile: recomputing it could give the next step's code)
    other = Client()
    sign_in(other, operator.username, "pw-operator")
    clock.forward(2)
    assert other.post(reverse("admin:login-code"), {"code": code}).status_code == 200
    assert other.get(reverse("admin:index")).status_code == 302


def test_a_recovery_code_signs_in_once(operator, enrolled):
    _, codes = enrolled
    first, second = Client(), Client()
    # when
    sign_in(first, operator.username, "pw-operator")
    used = first.post(reverse("admin:login-code"), {"code": codes[3].upper()})
    sign_in(second, operator.username, "pw-operator")
    again = second.post(reverse("admin:login-code"), {"code": codes[3]})
    # then
    assert used.status_code == 302 and first.get(reverse("admin:index")).status_code == 200
    assert again.status_code == 200 and second.get(reverse("admin:index")).status_code == 302
    assert StaticToken.objects.filter(device__user=operator).count() == 9
    event = StaffSecurityEvent.objects.get(kind=StaffSecurityEvent.RECOVERY_CODE_USED)
    assert event.user_id == operator.pk and "9 left" in event.detail


def test_ten_wrong_codes_lock_the_sign_in_like_wrong_passwords(client, operator, enrolled):
    secret, _ = enrolled
    sign_in(client, operator.username, "pw-operator")
    # when: ten wrong codes (some refused unchecked: the device throttles after each)
    responses = [client.post(reverse("admin:login-code"), {"code": wrong_code(secret)}) for _ in range(10)]
    # then: the tenth is the lockout, and the password no longer reaches the code page
    assert [r.status_code for r in responses] == [200] * 9 + [429]
    assert sign_in(client, operator.username, "pw-operator").status_code == 429


def test_an_unverified_session_of_an_enrolled_login_must_give_its_code(operator, enrolled, clock):
    secret, _ = enrolled
    client = Client()
    client.force_login(operator)  # signed in some other way than the login form
    # when
    response = client.get(reverse("admin:ledger_account_changelist"))
    # then
    assert response.status_code == 302
    assert response["Location"].startswith(TWO_FACTOR + "?next=/admin/ledger/account/")
    verified = client.post(TWO_FACTOR, {"code": totp(secret), "next": "/admin/ledger/account/"})
    assert verified.status_code == 302 and verified["Location"] == "/admin/ledger/account/"
    assert client.get(reverse("admin:ledger_account_changelist")).status_code == 200


def test_new_recovery_codes_replace_the_old_ones(client, operator, enrolled, clock):
    secret, old = enrolled
    client.force_login(operator)
    client.post(TWO_FACTOR, {"code": totp(secret)})  # verify this session
    clock.forward(30)
    # when
    page = client.post(TWO_FACTOR, {"code": totp(secret)}).content.decode()
    # then
    new = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page)
    assert len(new) == 10 and not set(new) & set(old)
    assert set(StaticToken.objects.filter(device__user=operator).values_list("token", flat=True)) == set(new)
    assert StaffSecurityEvent.objects.filter(kind=StaffSecurityEvent.RECOVERY_CODES_ISSUED,
                                             user_id=operator.pk).exists()


def test_without_the_setting_a_login_without_a_second_factor_signs_in_with_its_password(client, operator):
    assert sign_in(client, operator.username, "pw-operator")["Location"] == "/admin/"
    assert client.get(reverse("admin:ledger_account_changelist")).status_code == 200


def test_required_second_factor_leaves_only_enrolment_and_logout(client, operator, settings, clock):
    settings.ZENTRA_REQUIRE_OTP = True
    # when: the password alone
    assert sign_in(client, operator.username, "pw-operator")["Location"] == "/admin/"
    # then: every admin page sends to the enrolment page, which says why
    for url in (reverse("admin:index"), reverse("admin:ledger_account_changelist"), reverse("admin:trace-search")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(TWO_FACTOR + "?next="), url
    assert client.post(reverse("admin:ledger_account_changelist"), {}).status_code == 302
    page = client.get(TWO_FACTOR).content.decode()
    assert "need a second factor" in page and "otpauth://" in page
    # when: enrolled
    enrol(client, clock)
    # then: the admin opens
    assert client.get(reverse("admin:ledger_account_changelist")).status_code == 200
    # and logout was always open
    stranger = Client()
    stranger.force_login(operator.__class__.objects.create_user("newcomer", password="pw-newcomer-1", is_staff=True))
    assert stranger.post(reverse("admin:logout")).status_code == 200
    assert stranger.get(reverse("admin:index"))["Location"].startswith(reverse("admin:login"))
