"""The database's own walls (docs/security.md, "Database roles" and "Row-level security"),
applied after every `migrate` by the schema owner, idempotently.

- The application role (DATABASE_APP_URL's user) owns nothing: it may use the schema but not
  create in it; it reads and writes tables, but only inserts into append-only ones (ledger
  entries and transactions, checkpoints, history and evidence rows); it holds no TRUNCATE,
  cannot alter a table (so cannot disable a trigger) and cannot set session_replication_role.
- Every tenant-owned table has row-level security, forced (the owner too, unless it bypasses RLS
  as a superuser or a BYPASSRLS role), with a policy on the transaction's tenant context
  (zentra/db/scope.py). Tables without their own tenant column follow their parent row.
- Two narrow SECURITY DEFINER functions answer what the application may not read itself:
  which tenant owns an id (the "404 plus AccessDenial" path, the deliveries a worker picks up,
  the provider an unauthenticated event names), and which tenant an API key prefix belongs to
  (authentication, before any tenant is known).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from psycopg import sql

# Rows that are never changed once written: the application role may only insert them.
APPEND_ONLY_TABLES = {
    "ledger_ledgerentry", "ledger_ledgertransaction", "ledger_ledgercheckpoint", "ledger_checkpointhead",
    "ledger_ledgerperiod", "ledger_ledgerperiodbalance", "ledger_breakcomment",
    "webhooks_deliveryattempt", "payments_intenttransition", "payments_providerattempt", "payments_policydecision",
    "backoffice_evidenceexportdownload",
}
# Evidence: counted repeats update a row (audit), but nothing deletes one.
NEVER_DELETED_TABLES = {"audit_accessdenial", "audit_requestrecord"}

# Tenant-owned tables that reach their tenant through a parent row: visible with the parent.
CHILD_TABLES = {
    "webhooks_deliveryattempt": ("webhooks_delivery", "delivery_id"),
    "payments_intenttransition": ("payments_paymentintent", "intent_id"),
    "payments_providerattempt": ("payments_paymentintent", "intent_id"),
    "payments_providerevent": ("payments_provider", "provider_id"),
}

TENANTS = "zentra_tenant_ids()"
STANDARD = f"tenant_id = ANY ({TENANTS})"
# Tenantless evidence (unauthenticated requests) is visible under the NO_TENANT mark.
TENANTLESS = f"(tenant_id = '' AND '~' = ANY ({TENANTS}))"
POLICIES: dict[str, tuple[str, str]] = {
    "tenants_membership": (f"{STANDARD} OR user_id::text = zentra_user_id()", STANDARD),
    "tenants_historicalmembership": (f"{STANDARD} OR user_id::text = zentra_user_id()", STANDARD),
    "audit_accessdenial": (f"{STANDARD} OR target_tenant_id = ANY ({TENANTS}) OR "
                           f"actor_tenant_ids::text[] && {TENANTS} OR {TENANTLESS}",
                           f"tenant_id = '' OR {STANDARD}"),
    "audit_requestrecord": (f"{STANDARD} OR {TENANTLESS}", f"tenant_id = '' OR {STANDARD}"),
}

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION zentra_tenant_ids() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT string_to_array(coalesce(current_setting('zentra.tenant_ids', true), ''), ',')
$$;
CREATE OR REPLACE FUNCTION zentra_user_id() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('zentra.user_id', true), '')
$$;
-- Which tenant owns this id? Only for tables with a tenant column; nothing else of the row.
CREATE OR REPLACE FUNCTION zentra_owner_tenant(table_name text, object_id text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    owner text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns c WHERE c.table_schema = 'public'
                   AND c.table_name = zentra_owner_tenant.table_name AND c.column_name = 'tenant_id') THEN
        RAISE EXCEPTION 'zentra_owner_tenant: % has no tenant', zentra_owner_tenant.table_name;
    END IF;
    EXECUTE format('SELECT tenant_id::text FROM %I WHERE id::text = $1', zentra_owner_tenant.table_name)
        INTO owner USING object_id;
    RETURN owner;
END $$;
-- The tenant of an API key, by the public prefix of the key (authentication knows no tenant yet).
-- (PL/pgSQL, whose body is checked when called: a partial `migrate` may not have the table yet.)
CREATE OR REPLACE FUNCTION zentra_api_key_tenant(key_prefix text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN (SELECT tenant_id::text FROM tenants_apikey WHERE prefix = key_prefix LIMIT 1);
END $$;
REVOKE ALL ON FUNCTION zentra_owner_tenant(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION zentra_api_key_tenant(text) FROM PUBLIC;
"""


def app_role() -> str:
    return settings.DATABASE_APP_ROLE


def _tables(cursor) -> dict[str, bool]:
    """Every table of the schema, and whether it has its own tenant column."""
    cursor.execute("""
        SELECT t.table_name, bool_or(c.column_name = 'tenant_id')
          FROM information_schema.tables t JOIN information_schema.columns c USING (table_schema, table_name)
         WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE' GROUP BY t.table_name""")
    return dict(cursor.fetchall())


def tenant_owned_tables(cursor) -> list[str]:
    return sorted(name for name, has_tenant in _tables(cursor).items() if has_tenant or name in CHILD_TABLES)


def role_ensure(cursor, role: str, password: str = "") -> bool:
    """Create the application role if it is missing (the owner needs CREATEROLE or superuser)."""
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    if cursor.fetchone():
        return False
    statement = sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT").format(
        sql.Identifier(role))
    if password:
        statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
    cursor.execute(statement.as_string(cursor.connection))
    return True


def security_apply(connection) -> None:
    """Functions, row-level security and the application role's privileges, as the owner."""
    role = sql.Identifier(app_role())
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        raw = cursor.cursor
        role_ensure(raw, app_role(), settings.DATABASE_APP_PASSWORD)
        raw.execute(FUNCTIONS)
        tables = _tables(raw)
        owned = tenant_owned_tables(raw)
        for table in owned:
            name = sql.Identifier(table)
            if table in CHILD_TABLES:
                parent, column = CHILD_TABLES[table]
                using = check = (f"EXISTS (SELECT 1 FROM {parent} AS parent "
                                 f"WHERE parent.id = {table}.{column})")
            else:
                using, check = POLICIES.get(table, (STANDARD, STANDARD))
            raw.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(name))
            raw.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(name))
            raw.execute(sql.SQL("DROP POLICY IF EXISTS zentra_tenant ON {}").format(name))
            raw.execute(sql.SQL("CREATE POLICY zentra_tenant ON {} USING ({}) WITH CHECK ({})").format(
                name, sql.SQL(using), sql.SQL(check)))
        raw.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        raw.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(role))
        for table in sorted(tables):
            name = sql.Identifier(table)
            raw.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, role))
            if table == "django_migrations":
                privileges = "SELECT"
            elif table in APPEND_ONLY_TABLES or table.split("_", 1)[-1].startswith("historical"):
                privileges = "SELECT, INSERT"
            elif table in NEVER_DELETED_TABLES:
                privileges = "SELECT, INSERT, UPDATE"
            else:
                privileges = "SELECT, INSERT, UPDATE, DELETE"
            raw.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(sql.SQL(privileges), name, role))
        raw.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role))
        raw.execute(sql.SQL("GRANT EXECUTE ON FUNCTION zentra_owner_tenant(text, text), zentra_api_key_tenant(text) "
                            "TO {}").format(role))
