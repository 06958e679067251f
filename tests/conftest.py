import itertools
from datetime import datetime, timedelta

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from audit.actors import Actor
from backoffice.services.bootstrap import tenant_bootstrap
from tenants.models import ApiKey
from tenants.services.api_keys import api_key_create
from tenants.services.members import membership_set, staff_user_ensure

SYSTEM = Actor.system("tests")
_counter = itertools.count()


def pytest_collection_modifyitems(items):
    # Evidence rows live on their own connection (alias "evidence"); every database test may
    # use it, so tests need not repeat databases="__all__".
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is not None and "databases" not in marker.kwargs:
            item.add_marker(pytest.mark.django_db(*marker.args, **marker.kwargs, databases="__all__"), append=False)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    yield
    # The evidence alias shares the test database; close it too before the database is dropped.
    with django_db_blocker.unblock():
        connections.close_all()


class TenantContext:
    """A bootstrapped tenant with an API client holding its write key."""

    def __init__(self, slug: str, currency: str = "USD"):
        self.tenant, self.raw_key = tenant_bootstrap(slug=slug, name=slug.title(), currency=currency, actor=SYSTEM)
        self.client = api_client(self.raw_key)
        self._idem = itertools.count()

    def post(self, path: str, data=None, *, key: str | None = None, **extra):
        """POST with a fresh Idempotency-Key unless one is given."""
        key = key or f"test-{next(_counter)}"
        return self.client.post(path, data if data is not None else {}, format="json",
                                HTTP_IDEMPOTENCY_KEY=key, **extra)

    def get(self, path: str, **params):
        return self.client.get(path, params)

    def read_only_client(self) -> APIClient:
        _, raw = api_key_create(tenant=self.tenant, name="read", scope=ApiKey.SCOPE_READ, actor=SYSTEM)
        return api_client(raw)

    def member(self, role: str, username: str | None = None):
        user = staff_user_ensure(username=username or f"{self.tenant.slug}-{role}", password="pw-" + role,
                                actor=SYSTEM)
        membership_set(tenant=self.tenant, user=user, role=role, actor=SYSTEM)
        return user


def api_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


class Clock:
    """Python's clock, moved by time-machine instead of waiting: the application reads time
    through it (timezone.now), so a hold expires, a circuit's cooldown ends or a retry falls due
    at once. Time keeps ticking from where it is moved to; it never goes back."""

    def __init__(self, traveller) -> None:
        self.traveller = traveller

    def past(self, instant: datetime, *, margin: timedelta = timedelta(milliseconds=20)) -> None:
        target = instant + margin
        if target > timezone.now():
            self.traveller.move_to(target, tick=True)

    def forward(self, seconds: float) -> None:
        self.past(timezone.now() + timedelta(seconds=seconds), margin=timedelta(0))


@pytest.fixture
def clock(time_machine) -> Clock:
    return Clock(time_machine)


@pytest.fixture
def tenant_a(db):
    return TenantContext("alpha")


@pytest.fixture
def tenant_b(db):
    return TenantContext("beta")


@pytest.fixture
def make_account(tenant_a):
    """Create an account through the API of a tenant (default: tenant A)."""

    def make(ctx=None, **fields):
        ctx = ctx or tenant_a
        body = {"currency": "USD", "account_type": "customer", "customer": "cus_1", **fields}
        response = ctx.post("/v1/accounts", body)
        assert response.status_code == 201, response.content
        return response.json()

    return make
