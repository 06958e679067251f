"""Every row lock the ledger takes, in one place and one order.

Order, everywhere: hold rows first (by primary key), then account rows (by primary key).
Two postings touching the same accounts then queue behind each other instead of deadlocking
(each would otherwise hold one row the other waits for), and capture, release and expiry of
one hold queue on the hold row, so exactly one resolution wins.

Locks are taken within the caller's tenant: a row of another tenant is never locked, it is
missing, and the caller answers 404 through the one tenant-scoped lookup (tenants.selectors).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection

from audit.actors import Actor
from tenants.selectors import Scope, first_missing, object_not_found, tenant_object

from .models import Account, Hold, LedgerTransaction
from .selectors import holds_with_transaction_refs

_ACCOUNTS = f"SELECT * FROM {Account._meta.db_table} WHERE id = ANY(%s) {{tenant}} ORDER BY id {{lock}}"


def lock_accounts(account_ids: Iterable[str], *, tenant_id: str | None = None, lock: bool = True) -> dict[str, Account]:
    """Lock the accounts (of `tenant_id`, when given) in primary-key order; with `lock=False`
    only read them. Ids that are missing, or of another tenant, are absent from the result."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    # Every posting passes here: a hand-written statement spares the ORM's query compilation.
    sql = _ACCOUNTS.format(tenant="" if tenant_id is None else "AND tenant_id = %s", lock="FOR UPDATE" if lock else "")
    rows = Account.objects.raw(sql, [ids] if tenant_id is None else [ids, tenant_id])
    return {account.id: account for account in rows}


def lock_tenant_accounts(*, tenant_id: str, wanted: Sequence[tuple[str, str]], actor: Actor,
                         action: str, already: dict[str, Account] | None = None,
                         lock: bool = True) -> dict[str, Account]:
    """Lock (or, with `lock=False`, read) the tenant's accounts named in `wanted` ((account id,
    request field) pairs), except those the caller holds `already`. A missing one is NotFound
    naming its field, with evidence when it belongs to another tenant. Returns every account,
    `already` included."""
    held = dict(already or {})
    locked = lock_accounts((account_id for account_id, _ in wanted if account_id not in held), tenant_id=tenant_id,
                           lock=lock)
    held.update(locked)
    missing = first_missing((account_id for account_id, _ in wanted), held)
    if missing is not None:
        field = next(field for account_id, field in wanted if account_id == missing)
        raise object_not_found(Account, missing, scope=Scope.of_tenant(tenant_id, actor), action=action,
                               label="account", field=field)
    return held


_ACCOUNT_WITH_SYSTEM_LOCK = f"""
    SELECT * FROM {Account._meta.db_table} WHERE tenant_id = %(tenant)s AND id IN (
        %(account)s,
        (SELECT system.id FROM {Account._meta.db_table} AS system
         JOIN {Account._meta.db_table} AS own ON own.id = %(account)s AND system.tenant_id = own.tenant_id
              AND system.currency = own.currency
         WHERE system.account_type = %(system_type)s AND system.is_system))
    ORDER BY id FOR UPDATE"""


def lock_account_with_system(*, tenant_id: str, account_id: str, system_type: str, actor: Actor, action: str,
                             field: str = "account") -> tuple[Account, Account | None]:
    """The tenant's account and its tenant's system account of `system_type` in the same
    currency (the reserve for a hold, the payout account for a payout), locked together in key
    order by one statement. The system account is None when the tenant has none."""
    rows = {a.id: a for a in Account.objects.raw(_ACCOUNT_WITH_SYSTEM_LOCK, {
        "tenant": tenant_id, "account": account_id, "system_type": system_type})}
    account = rows.pop(account_id, None)
    if account is None:
        raise object_not_found(Account, account_id, scope=Scope.of_tenant(tenant_id, actor), action=action,
                               label="account", field=field)
    return account, next(iter(rows.values()), None)


def lock_tenant_account(*, tenant_id: str, account_id: str, actor: Actor, action: str) -> Account:
    """One account of the tenant, locked (a change of its status)."""
    return tenant_object(Account, account_id, scope=Scope.of_tenant(tenant_id, actor), action=action, label="account",
                         lock=True)


def lock_transaction(*, tenant_id: str, transaction_id: str, actor: Actor) -> LedgerTransaction:
    """Serialises reversals of one transaction. Not a row lock: that needs UPDATE privilege, which
    the application role does not hold on append-only tables; a transaction-scoped advisory lock
    on the id queues the second reversal the same way."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"reverse:{transaction_id}"])
    return tenant_object(LedgerTransaction, transaction_id, scope=Scope.of_tenant(tenant_id, actor),
                         action="reverse transaction", label="transaction")


def lock_tenant_periods(*, tenant_id: str) -> None:
    """Serialises a period close of the tenant with postings in flight and with another close.
    Not a row lock: the key is also taken, shared, by every ledger transaction INSERT of the
    tenant (a trigger, migration 0013), and row locks on append-only tables need UPDATE
    privilege, which the application role does not hold. Taken first, before any row lock, by
    the close alone; a posting takes it last (at its INSERT), after its account rows, and the
    close holds no row lock a posting waits for, so the two cannot deadlock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(ledger_period_lock_key(%s))", [tenant_id])


def lock_tenant_hold(*, tenant_id: str, hold_id: str, actor: Actor, action: str) -> Hold:
    """The tenant's hold, locked, with its transaction refs: one statement."""
    return tenant_object(holds_with_transaction_refs(Hold.objects.all()), hold_id,
                         scope=Scope.of_tenant(tenant_id, actor), action=action, label="hold", lock=True)


def lock_holds(hold_ids: Iterable[str], *, skip_locked: bool = False) -> list[Hold]:
    """Holds (of any tenant: the expiry job's view) in pk order, with their transaction refs."""
    ids = sorted(set(hold_ids))
    if not ids:
        return []
    return list(holds_with_transaction_refs(Hold.objects.select_for_update(of=("self",), skip_locked=skip_locked))
                .select_related("tenant").filter(pk__in=ids).order_by("pk"))


def lock_due_holds(*, now: datetime, batch: int) -> list[Hold]:
    """The expiry job's next batch: active holds past their expiry whose account takes entries,
    oldest first, skipping those another run holds (so runs share the work)."""
    return list(holds_with_transaction_refs(
        Hold.objects.select_for_update(of=("self",), skip_locked=True).select_related("tenant"))
        .filter(status=Hold.ACTIVE, expires_at__lte=now, account__status=Account.ACTIVE)
        .order_by("expires_at")[:batch])
