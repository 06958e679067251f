import itertools
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.utils import timezone
from psycopg import sql
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


@pytest.fixture(scope="session", autouse=True)
def _flush_as_replica():
    """Transactional tests end with a flush (TRUNCATE of every table); the ledger tables refuse
    TRUNCATE (ledger migration 0011) except under `session_replication_role = replica`, which
    only a superuser such as the test database's owner may set (docs/security.md)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        return original(self, ["SET LOCAL session_replication_role = replica", *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    yield
    DatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _full_rate_limit_budgets():
    """Every test starts with full request budgets, as each starts with an empty database: the
    suite makes its calls from one address (127.0.0.1), so counts would otherwise carry over from
    one test to the next (zentra/api/ratelimit.py)."""
    from zentra.api.ratelimit import limiter

    limiter().reset()


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

    def checker_client(self) -> APIClient:
        """A second write key of the tenant: the other actor of maker-checker."""
        _, raw = api_key_create(tenant=self.tenant, name="checker", scope=ApiKey.SCOPE_WRITE, actor=SYSTEM)
        return api_client(raw)

    def member(self, role: str, username: str | None = None):
        user = staff_user_ensure(username=username or f"{self.tenant.slug}-{role}", password="pw-" + role,
                                actor=SYSTEM)
        membership_set(tenant=self.tenant, user=user, role=role, actor=SYSTEM)
        return user


@contextmanager
def as_app_role():
    """Run what follows as the application role, as web and worker processes do: row-level
    security and the role's grants apply. Inside the test's transaction (the usual test) the
    connection switches role with SET ROLE, so it still sees the test's own rows; a test without
    one (transaction=True) reconnects as the role for real, which is also what stays correct
    behind PgBouncer's transaction pooling. The test itself runs as the schema owner."""
    role = sql.Identifier(settings.DATABASE_APP_ROLE).as_string()
    switched: list[tuple[str, dict | None]] = []
    for alias in ("default", "evidence"):
        connection = connections[alias]
        if connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute(f"SET ROLE {role}")
            switched.append((alias, None))
        else:
            owner = connection.settings_dict
            connection.close()
            # A copy: the settings dict is shared with the connections of other threads.
            connection.settings_dict = {**owner, "USER": settings.DATABASE_APP_ROLE,
                                        "PASSWORD": settings.DATABASE_APP_PASSWORD}
            switched.append((alias, owner))
    try:
        yield
    finally:
        for alias, owner in switched:
            connection = connections[alias]
            if owner is None:
                if not connection.needs_rollback:
                    with connection.cursor() as cursor:
                        cursor.execute("RESET ROLE")
            else:
                connection.close()
                connection.settings_dict = owner


class AppRoleAPIClient(APIClient):
    """An API client whose requests are served as the application role (docs/security.md)."""

    def request(self, *args, **kwargs):
        with as_app_role():
            return super().request(*args, **kwargs)


class AppRoleClient(Client):
    """The Django test client, its requests served as the application role: the admin as
    operators reach it in `make run` and `make serve`."""

    def request(self, **request):
        with as_app_role():
            return super().request(**request)


@pytest.fixture
def client() -> Client:
    return AppRoleClient()


def api_client(raw_key: str) -> APIClient:
    client = AppRoleAPIClient()
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
def one_evidence_window(settings, time_machine):
    """Counted evidence (a flood of refusals) falls in windows aligned on the epoch: a test that
    starts in the last half minute of a 600 s window begins in the next instead, so that its
    calls are not split across two windows (two rows) by the wall clock."""
    settings.ZENTRA_EVIDENCE_REPEAT_WINDOW_SECONDS = 600
    now = timezone.now().timestamp()
    left = 600 - now % 600
    if left < 30:
        time_machine.move_to(datetime.fromtimestamp(now + left + 0.1, tz=UTC), tick=True)
    return settings


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
