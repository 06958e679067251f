"""PostgreSQL, with the tenant context of zentra.db.scope set inside every transaction.

Row-level security reads `zentra.tenant_ids` and `zentra.user_id`, which this backend sets with
`set_config(..., true)`: local to the transaction, so a pooled server connection (PgBouncer in
transaction mode) never carries one client's context into another's. Inside an atomic block the
context is set once, before the block's first statement, and again only if the scope changed.
A statement outside any transaction (Django's autocommit) runs in a short transaction of its
own that sets the context first. The context statement goes to psycopg directly, so query
counts and logs show only the application's own statements.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.backends.postgresql import base

from zentra.db.scope import db_context

# Statements PostgreSQL refuses inside a transaction block: they run as they are.
_OUTSIDE_TRANSACTIONS = re.compile(r"^\s*((CREATE|DROP|ALTER)\s+DATABASE|VACUUM|REINDEX|.*\bCONCURRENTLY\b)",
                                   re.IGNORECASE | re.DOTALL)
_TRANSACTION_CONTROL = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ", "SET ROLE ", "RESET ROLE")
SET_CONTEXT = "SELECT set_config('zentra.tenant_ids', %s, true), set_config('zentra.user_id', %s, true)"


# The stubs know only Django's public surface; the transaction hooks below are its private one.
_PostgreSQL: Any = base.DatabaseWrapper


class DatabaseWrapper(_PostgreSQL):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._context_in_transaction: tuple[str, str] | None = None
        # First in the list: the outermost wrapper, around any a test or tool adds.
        self.execute_wrappers.append(self._with_tenant_context)

    def _with_tenant_context(self, execute, sql, params, many, context):
        if isinstance(sql, str) and sql.startswith(_TRANSACTION_CONTROL):
            return execute(sql, params, many, context)  # read no rows (and may follow an error)
        wanted = db_context()
        if isinstance(sql, str) and sql.startswith("SET TRANSACTION"):
            # Must be the transaction's first statement: the context follows it.
            result = execute(sql, params, many, context)
            self._context_set(wanted)
            return result
        if self.in_atomic_block or not self.get_autocommit():
            if self._context_in_transaction != wanted:
                self._context_set(wanted)
            return execute(sql, params, many, context)
        if self.settings_dict.get("NAME") in (None, "", "postgres") or (
                isinstance(sql, str) and _OUTSIDE_TRANSACTIONS.match(sql)):
            return execute(sql, params, many, context)  # maintenance statements: no tenant rows there
        with transaction.atomic(using=self.alias):
            self._context_set(wanted)
            return execute(sql, params, many, context)

    def _context_set(self, wanted: tuple[str, str]) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(SET_CONTEXT, wanted)
        self._context_in_transaction = wanted

    # Whatever ends a transaction (or undoes part of one) ends the context set in it.
    def _commit(self):
        self._context_in_transaction = None
        return super()._commit()

    def _rollback(self):
        self._context_in_transaction = None
        return super()._rollback()

    def _savepoint_rollback(self, sid):
        # A context set inside the savepoint is undone with it: set it again before the next statement.
        try:
            return super()._savepoint_rollback(sid)
        finally:
            self._context_in_transaction = None

    def _set_autocommit(self, autocommit):
        self._context_in_transaction = None
        return super()._set_autocommit(autocommit)

    def _close(self):
        self._context_in_transaction = None
        return super()._close()
