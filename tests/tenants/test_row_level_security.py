"""The database is the second wall (docs/security.md, "Database roles", "Row-level security"):
as the application role, a query sees only the rows of the tenants in its transaction's context,
even in raw SQL, and the role can neither change append-only rows nor get around the rules."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from ledger.models import Account, LedgerEntry
from tenants.models import ApiKey, Membership
from zentra.db.scope import NO_TENANT, tenant_scope
from zentra.db.security import tenant_owned_tables

from ..conftest import as_app_role
from ..ledger.test_refusals import transfer_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_books(tenant_a, tenant_b, make_account):
    for ctx in (tenant_a, tenant_b):
        funding = make_account(ctx, account_type="external", normal_balance="debit", allow_overdraft=True)
        alice = make_account(ctx, customer="alice")
        assert ctx.post("/v1/transactions", transfer_body(funding, alice, 1_000)).status_code == 201
    return tenant_a, tenant_b


def count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def test_without_a_tenant_context_the_application_role_sees_no_row(two_books):
    # given: rows of two tenants, visible to the owner
    assert count("ledger_account") > 0 and count("ledger_ledgerentry") > 0
    # when / then
    with as_app_role():
        for table in ("ledger_account", "ledger_ledgerentry", "tenants_apikey", "webhooks_event",
                      "ledger_historicalaccount", "webhooks_deliveryattempt", "audit_requestrecord"):
            assert count(table) == 0, table


def test_another_tenants_rows_are_invisible_even_to_raw_sql(two_books):
    tenant_a, tenant_b = two_books
    # when
    with as_app_role(), tenant_scope([tenant_a.tenant.id]):
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT tenant_id FROM ledger_account")
            seen = {row[0] for row in cursor.fetchall()}
            cursor.execute("SELECT count(*) FROM ledger_ledgerentry WHERE tenant_id = %s", [tenant_b.tenant.id])
            b_entries = cursor.fetchone()[0]
        orm_b = Account.objects.filter(tenant=tenant_b.tenant).count()
    # then
    assert seen == {tenant_a.tenant.id}
    assert b_entries == 0 and orm_b == 0
    assert LedgerEntry.objects.filter(tenant=tenant_b.tenant).count() > 0  # the owner sees them


def test_an_operator_of_several_tenants_sees_exactly_those(two_books, db):
    tenant_a, tenant_b = two_books
    with as_app_role(), tenant_scope([tenant_a.tenant.id, tenant_b.tenant.id]):
        assert {a.tenant_id for a in Account.objects.all()} == {tenant_a.tenant.id, tenant_b.tenant.id}


def test_the_application_role_cannot_write_into_another_tenant(two_books):
    tenant_a, tenant_b = two_books
    with as_app_role(), tenant_scope([tenant_a.tenant.id]):
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            ApiKey.objects.create(tenant=tenant_b.tenant, name="smuggled", prefix="zk_smuggled", key_hash="x")


def test_memberships_are_visible_to_their_own_user_before_any_tenant(tenant_a):
    user = tenant_a.member("operator")
    with as_app_role(), tenant_scope([], user_id=user.pk):
        assert list(Membership.objects.values_list("tenant_id", flat=True)) == [tenant_a.tenant.id]
    with as_app_role(), tenant_scope([]):
        assert not Membership.objects.exists()


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_ledgerentry SET amount = amount",
    "DELETE FROM ledger_ledgerentry",
    "UPDATE ledger_ledgertransaction SET description = 'x'",
    "TRUNCATE ledger_ledgerentry, ledger_ledgertransaction CASCADE",
    "TRUNCATE ledger_account CASCADE",
    "ALTER TABLE ledger_ledgerentry DISABLE TRIGGER ALL",
    "SET LOCAL session_replication_role = replica",
    "DELETE FROM audit_accessdenial",
    "DELETE FROM ledger_historicalaccount",
    "CREATE TABLE smuggled (id int)",
    "ALTER TABLE ledger_ledgerentry NO FORCE ROW LEVEL SECURITY",
    "SET LOCAL row_security = off; SELECT count(*) FROM ledger_account",
], ids=["update-entry", "delete-entry", "update-transaction", "truncate-ledger", "truncate-accounts",
        "disable-triggers", "replica-mode", "delete-evidence", "delete-history", "create-table", "unforce-rls",
        "row-security-off"])
def test_the_application_role_cannot_get_around_the_rules(two_books, statement):
    tenant_a, _ = two_books
    with as_app_role(), tenant_scope([tenant_a.tenant.id, NO_TENANT]):
        with pytest.raises(DatabaseError, match="permission denied|must be owner|row-level security|"
                                                "query would be affected by row-level security"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement)


def test_every_tenant_owned_table_has_forced_row_level_security_and_a_policy():
    with connection.cursor() as cursor:
        owned = tenant_owned_tables(cursor.cursor)
        cursor.execute("""SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, count(p.polname)
                            FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
                           WHERE c.relname = ANY(%s) GROUP BY 1, 2, 3""", [owned])
        rows = {name: (enabled, forced, policies) for name, enabled, forced, policies in cursor.fetchall()}
    assert len(owned) >= 35
    assert {name for name, state in rows.items() if state != (True, True, 1)} == set()
    assert set(rows) == set(owned)


def test_the_application_role_owns_nothing():
    from django.conf import settings

    with connection.cursor() as cursor:
        cursor.execute("""SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
                           WHERE r.rolname = %s""", [settings.DATABASE_APP_ROLE])
        owned = cursor.fetchone()[0]
        cursor.execute("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
                       [settings.DATABASE_APP_ROLE])
        attributes = cursor.fetchone()
    assert owned == 0
    assert attributes == (False, False, False, False)


def test_leaving_a_scope_leaves_no_context_behind(two_books):
    tenant_a, _ = two_books
    with as_app_role():
        with tenant_scope([tenant_a.tenant.id]):
            assert Account.objects.exists()
        # the same connection, the next statement: nothing carried over
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('zentra.tenant_ids', true)")
            assert cursor.fetchone()[0] in ("", None)
        assert not Account.objects.exists()
