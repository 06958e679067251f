"""Staff sign-in is locked after ten failures per username and address (django-axes), through the
admin's real login form: the right password no longer helps, the page says so in the admin's
look, every refusal leaves an AccessDenial, and only a platform superuser lifts the lockout,
leaving evidence of who lifted whose."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from audit.models import AccessDenial
from backoffice.models import StaffSecurityEvent

from ..conftest import as_app_role

pytestmark = pytest.mark.django_db

LIMIT = 10


def sign_in(client: Client, username: str, password: str, **extra):
    return client.post(reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"},
                       **extra)


def signed_in(client: Client) -> bool:
    return client.get(reverse("admin:index")).status_code == 200


@pytest.fixture
def operator(tenant_a):
    return tenant_a.member("operator")  # password "pw-operator"


def test_ten_wrong_passwords_lock_the_login_even_against_the_right_one(client, operator, tenant_a):
    # given: nine wrong passwords are refused as wrong passwords
    for _ in range(LIMIT - 1):
        assert sign_in(client, operator.username, "guess").status_code == 200
    # when: the tenth, then the right one
    tenth = sign_in(client, operator.username, "guess")
    right = sign_in(client, operator.username, "pw-operator")
    # then: both get the lockout page, in the admin's frame, and no session is signed in
    for response in (tenth, right):
        html = response.content.decode()
        assert response.status_code == 429
        assert "Sign-in paused" in html and "Zentra back office" in html and operator.username in html
        assert "even with the right password" in html
        assert int(response["Retry-After"]) == 30 * 60
    assert not signed_in(client)
    # and each refusal is an AccessDenial that the login's tenant's compliance reviewers see
    denials = AccessDenial.objects.filter(action="admin:login", target=f"user:{operator.pk}")
    assert denials.count() == 2
    assert all(tenant_a.tenant.id in d.actor_tenant_ids and "127.0.0.1" in d.reason for d in denials)
    # and every failure is kept in the failure log
    assert AccessFailureLog.objects.filter(username=operator.username).count() == LIMIT + 1


def test_nine_failures_then_the_right_password_signs_in_and_clears_the_count(client, operator):
    for _ in range(LIMIT - 1):
        sign_in(client, operator.username, "guess")
    # when
    response = sign_in(client, operator.username, "pw-operator")
    # then
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert signed_in(client)
    assert not AccessAttempt.objects.filter(username=operator.username).exists()


def test_a_forged_forwarded_for_header_gets_no_fresh_tries(client, operator):
    # when: every guess claims another client address
    for n in range(LIMIT):
        sign_in(client, operator.username, "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    # then
    assert sign_in(client, operator.username, "pw-operator", HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


def test_the_lock_holds_one_username_at_one_address(client, operator, tenant_a):
    for _ in range(LIMIT):
        sign_in(client, operator.username, "guess")
    # then: the same login from another address, and another login from this one, still sign in
    elsewhere = Client(REMOTE_ADDR="192.0.2.10")
    assert sign_in(elsewhere, operator.username, "pw-operator").status_code == 302
    viewer = tenant_a.member("viewer")
    assert sign_in(Client(), viewer.username, "pw-viewer").status_code == 302


def test_the_lock_lifts_after_thirty_quiet_minutes(client, operator, clock):
    for _ in range(LIMIT):
        sign_in(client, operator.username, "guess")
    clock.forward(29 * 60)
    # when: a try during the lockout restarts its thirty minutes
    assert sign_in(client, operator.username, "pw-operator").status_code == 429
    clock.forward(29 * 60)
    assert sign_in(client, operator.username, "pw-operator").status_code == 429
    clock.forward(31 * 60)
    # then
    assert sign_in(client, operator.username, "pw-operator").status_code == 302


def lift(client: Client, attempts, reason: str = "Called them back on their desk phone"):
    return client.post(reverse("admin:axes_accessattempt_changelist"), {
        "action": "lift_lockout", "_selected_action": [a.pk for a in attempts], "confirm": "yes", "reason": reason})


def test_a_superuser_lifts_a_lockout_and_the_evidence_names_who_lifted_whose(client, operator):
    for _ in range(LIMIT):
        sign_in(client, operator.username, "guess")
    root = get_user_model().objects.create_superuser("platform-root", password="pw-root-long-enough")
    admin_client = Client()
    admin_client.force_login(root)
    # given: the lockout is listed for the superuser
    listing = admin_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and operator.username in listing.content.decode()
    attempts = list(AccessAttempt.objects.filter(username=operator.username))
    # when: the action asks for a reason first
    confirm = admin_client.post(reverse("admin:axes_accessattempt_changelist"),
                                {"action": "lift_lockout", "_selected_action": [a.pk for a in attempts]})
    assert confirm.status_code == 200 and "Lift the lockout" in confirm.content.decode()
    assert AccessAttempt.objects.filter(username=operator.username).exists()
    lifted = lift(admin_client, attempts)
    # then
    assert lifted.status_code == 302
    assert sign_in(client, operator.username, "pw-operator").status_code == 302
    event = StaffSecurityEvent.objects.get(kind=StaffSecurityEvent.LOCKOUT_RESET)
    assert (event.actor, event.actor_label) == (f"user:{root.pk}", "platform-root")
    assert (event.user_id, event.username, event.ip_address) == (operator.pk, operator.username, "127.0.0.1")
    assert event.reason == "Called them back on their desk phone" and "10 failed sign-ins" in event.detail
    # and the failures themselves are still on record
    assert AccessFailureLog.objects.filter(username=operator.username).count() == LIMIT


def test_a_lift_without_a_reason_lifts_nothing(operator, client):
    for _ in range(LIMIT):
        sign_in(client, operator.username, "guess")
    admin_client = Client()
    admin_client.force_login(get_user_model().objects.create_superuser("platform-root", password="pw-root-long"))
    # when
    response = lift(admin_client, AccessAttempt.objects.all(), reason="")
    # then
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert AccessAttempt.objects.filter(username=operator.username).exists()
    assert not StaffSecurityEvent.objects.exists()


def test_staff_who_are_not_superusers_cannot_see_or_lift_lockouts(client, operator, tenant_a):
    for _ in range(LIMIT):
        sign_in(client, operator.username, "guess")
    owner = Client()
    owner.force_login(tenant_a.member("owner"))
    before = AccessDenial.objects.count()
    # when
    listing = owner.get(reverse("admin:axes_accessattempt_changelist"))
    forged = lift(owner, AccessAttempt.objects.all())
    # then: refused, with evidence, and nothing lifted
    assert (listing.status_code, forged.status_code) == (403, 403)
    assert AccessDenial.objects.count() == before + 2
    assert AccessAttempt.objects.filter(username=operator.username).exists()
    assert not StaffSecurityEvent.objects.exists()
    assert "Access attempts" not in owner.get(reverse("admin:index")).content.decode()


def test_as_the_application_role_a_refused_sign_in_still_names_the_logins_tenants(client, operator, tenant_a):
    # given: the web process's database role, with row-level security (nobody is signed in yet)
    with as_app_role():
        # when
        for _ in range(LIMIT):
            sign_in(client, operator.username, "guess")
        locked = sign_in(client, operator.username, "pw-operator")
    # then
    assert locked.status_code == 429
    denials = AccessDenial.objects.filter(action="admin:login", target=f"user:{operator.pk}")
    assert denials.count() == 2  # the tenth failure and the try while locked
    assert all(d.actor_tenant_ids == [tenant_a.tenant.id] and d.tenant_id == tenant_a.tenant.id for d in denials)
