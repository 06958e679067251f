"""A tenant's own request budget: set by the platform superuser in the tenant's admin page (through
the service, with a reason kept in its history), never by the tenant's owner."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from audit.actors import Actor
from audit.models import AccessDenial
from tenants.errors import PlatformOnly
from tenants.services.tenants import tenant_rate_limits_set
from zentra.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def change_url(ctx) -> str:
    return reverse("admin:tenants_tenant_change", args=[ctx.tenant.pk])


@pytest.fixture
def root(client):
    user = get_user_model().objects.create_superuser(username="root", password="pw-root", email="root@example.com")
    client.force_login(user)
    return user


def test_the_superuser_sets_a_tenants_limits_and_its_keys_get_them(client, root, tenant_a):
    # when
    form = client.get(change_url(tenant_a))
    saved = client.post(change_url(tenant_a), {"name": tenant_a.tenant.name, "rate_limit_per_second": "7",
                                               "rate_limit_per_minute": "90", "reason": "launch week burst"})

    # then
    assert {"rate_limit_per_second", "rate_limit_per_minute"} <= set(form.context["adminform"].form.fields)
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    tenant_a.tenant.refresh_from_db()
    assert (tenant_a.tenant.rate_limit_per_second, tenant_a.tenant.rate_limit_per_minute) == (7, 90)
    latest = tenant_a.tenant.history.first()
    assert (latest.history_user_id, latest.history_change_reason) == (root.pk, "launch week burst")
    answer = tenant_a.get("/v1/accounts")
    assert (answer["RateLimit-Limit"], answer["RateLimit-Policy"]) == ("7", "7;w=1, 90;w=60")
    assert "7/s, 90/min" in client.get(reverse("admin:tenants_tenant_changelist")).content.decode()


def test_emptied_limits_fall_back_to_the_defaults(client, root, tenant_a, settings):
    # given
    settings.ZENTRA_RATE_LIMIT_PER_SECOND, settings.ZENTRA_RATE_LIMIT_PER_MINUTE = 100, 6000
    tenant_rate_limits_set(tenant=tenant_a.tenant, per_second=7, per_minute=90, actor=Actor.for_user(root),
                           reason="burst")

    # when
    saved = client.post(change_url(tenant_a), {"name": tenant_a.tenant.name, "rate_limit_per_second": "",
                                               "rate_limit_per_minute": "", "reason": "burst over"})

    # then
    assert saved.status_code == 302
    tenant_a.tenant.refresh_from_db()
    assert (tenant_a.tenant.rate_limit_per_second, tenant_a.tenant.rate_limit_per_minute) == (None, None)
    assert tenant_a.get("/v1/accounts")["RateLimit-Policy"] == "100;w=1, 6000;w=60"


def test_zero_is_refused_and_changes_nothing(client, root, tenant_a):
    # when
    refused = client.post(change_url(tenant_a), {"name": tenant_a.tenant.name, "rate_limit_per_second": "0",
                                                 "rate_limit_per_minute": "90", "reason": "oops"})

    # then
    assert refused.status_code == 200
    assert "rate_limit_per_second" in refused.context["adminform"].form.errors
    tenant_a.tenant.refresh_from_db()
    assert (tenant_a.tenant.rate_limit_per_second, tenant_a.tenant.rate_limit_per_minute) == (None, None)


def test_an_owner_is_not_offered_the_limits_and_posting_them_changes_nothing(client, tenant_a):
    # given
    owner = tenant_a.member("owner")
    client.force_login(owner)

    # when
    form = client.get(change_url(tenant_a))
    saved = client.post(change_url(tenant_a), {"name": "Alpha", "rate_limit_per_second": "100000",
                                               "rate_limit_per_minute": "100000", "reason": "more please"})

    # then
    assert not {"rate_limit_per_second", "rate_limit_per_minute"} & set(form.context["adminform"].form.fields)
    assert saved.status_code == 302
    tenant_a.tenant.refresh_from_db()
    assert (tenant_a.tenant.name, tenant_a.tenant.rate_limit_per_second) == ("Alpha", None)


def test_the_service_refuses_anyone_but_the_platform_with_evidence(tenant_a):
    # given
    owner = tenant_a.member("owner")

    # when
    with pytest.raises(PlatformOnly) as refused:
        tenant_rate_limits_set(tenant=tenant_a.tenant, per_second=100000, per_minute=None,
                               actor=Actor.for_user(owner), reason="more please")

    # then
    assert (refused.value.status, refused.value.code) == (403, "permission_denied")
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.rate_limit_per_second is None
    denial = AccessDenial.objects.get(actor=f"user:{owner.pk}")
    assert (denial.action, denial.target_tenant_id) == ("set rate limits", tenant_a.tenant.pk)


def test_the_service_refuses_a_budget_of_zero(tenant_a):
    # when
    with pytest.raises(ValidationFailed) as refused:
        tenant_rate_limits_set(tenant=tenant_a.tenant, per_second=0, per_minute=10, actor=Actor.system("tests"),
                               reason="oops")

    # then
    assert [error["field"] for error in refused.value.errors] == ["rate_limit_per_second"]
    tenant_a.tenant.refresh_from_db()
    assert (tenant_a.tenant.rate_limit_per_second, tenant_a.tenant.rate_limit_per_minute) == (None, None)
