"""Every row lock the ledger takes, in one place and one order.

Order, everywhere: hold rows first (by primary key), then account rows (by primary key).
Two postings touching the same accounts then queue behind each other instead of deadlocking
(each would otherwise hold one row the other waits for), and capture, release and expiry of
one hold queue on the hold row, so exactly one resolution wins.

Strength: FOR NO KEY UPDATE, what an UPDATE of a balance takes anyway. It does not conflict with
the FOR KEY SHARE that foreign-key checks take on the rows they reference (an intent naming
its merchant, an entry its account), so inserting those never queues behind a posting's
locks: with FOR UPDATE, a busy merchant row queued intent creations behind settlements, and
the queue's tuple lock deadlocked three such transactions under load (bench/intents.py).

Locks are taken within the caller's tenant: a row of another tenant is never locked, it is
missing, and the caller answers 404 through the one tenant-scoped lookup (tenants.selectors).

Hot accounts (ARCHITECTURE.md) are several rows: the database function ledger_account_rows
(migration 0017) turns the accounts a posting names into the rows it locks, in the same
statement as the lock: a credit locks the one shard `pick` chooses (from the hold, intent or
payout the posting belongs to, so its later steps meet the same shard), a debit that needs the
whole balance (`whole`) locks every shard. Results are keyed by row id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

from audit.actors import Actor
from tenants.selectors import Scope, first_missing, object_not_found, tenant_object

from .models import Account, Hold, LedgerTransaction, logical_account_of
from .selectors import holds_with_transaction_refs


def shard_pick(key: str) -> int:
    """A stable, non-negative 63-bit number from a key: the shard of an account a posting of
    that key credits is this modulo the account's shard count."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


ROW_LOCK = "FOR NO KEY UPDATE OF account"


def _rows_of(arguments: str) -> str:
    """The accounts table joined to the row ids ledger_account_rows(`arguments`) gives: the ids
    computed once (a function beside another condition, the tenant's, may be evaluated again
    for every row scanned), each row then found by its primary key."""
    return (f"unnest((SELECT ledger_account_rows({arguments}))) AS wanted(row_id) "
            f"JOIN {Account._meta.db_table} AS account ON account.id = wanted.row_id")


_ACCOUNTS = f"SELECT account.* FROM {_rows_of('%s, %s, %s, %s')} {{tenant}} ORDER BY account.id {{lock}}"


def lock_accounts(account_ids: Iterable[str], *, tenant_id: str | None = None, lock: bool = True,
                  whole: Collection[str] = (), pick: int = 0, exact: Collection[str] = ()) -> dict[str, Account]:
    """Lock the rows of the accounts (of `tenant_id`, when given) in primary-key order; with
    `lock=False` only read them. Ids that are missing, or of another tenant, are absent from the
    result. `whole`: accounts debited, whose every shard is locked; `pick`: the shard credited;
    `exact`: ids of rows wanted as such (the reserve row a hold credited)."""
    ids = sorted(set(account_ids) - set(exact))
    if not ids and not exact:
        return {}
    # Every posting passes here: a hand-written statement spares the ORM's query compilation.
    sql = _ACCOUNTS.format(tenant="" if tenant_id is None else "WHERE account.tenant_id = %s",
                           lock=ROW_LOCK if lock else "")
    params: list[object] = [ids, sorted(set(whole)), pick, sorted(set(exact))]
    rows = Account.objects.raw(sql, params if tenant_id is None else [*params, tenant_id])
    return {account.id: account for account in rows}


def _covered(account_id: str, held: dict[str, Account], whole: Collection[str], exact: Collection[str]) -> bool:
    """Whether the rows the caller holds already stand for `account_id`: the row itself (an
    account of one row, or a row wanted as such), or the shard of it a credit needs, or all of
    its shards when it is debited."""
    row = held.get(account_id)
    if row is not None and (row.shard_count == 1 or row.shard_of_id is not None or account_id in exact):
        return True
    if account_id in exact:
        return False
    rows = [r for r in held.values() if r.logical_id == account_id]
    if not rows:
        return False
    return account_id not in whole or len(rows) == rows[0].shard_count


def locked_row(locked: dict[str, Account], account_id: str) -> Account:
    """The locked row that stands for `account_id`: the account's own row, or the one shard of it
    a credit locked."""
    row = locked.get(account_id)
    if row is not None:
        return row
    return next(r for r in sorted(locked.values(), key=lambda r: r.id) if r.logical_id == account_id)


def lock_tenant_accounts(*, tenant_id: str, wanted: Sequence[tuple[str, str]], actor: Actor,
                         action: str, already: dict[str, Account] | None = None,
                         lock: bool = True, whole: Collection[str] = (), pick: int = 0,
                         exact: Collection[str] = ()) -> dict[str, Account]:
    """Lock (or, with `lock=False`, read) the rows of the tenant's accounts named in `wanted`
    ((account id, request field) pairs), except those the caller holds `already`. A missing one
    is NotFound naming its field, with evidence when it belongs to another tenant. Returns every
    row, `already` included, by row id."""
    held = dict(already or {})
    # A shard row is the ledger's layout, not an account anyone names: unless the caller asks
    # for it as such (`exact`) or already holds it, it is missing like any unknown id.
    named_shard = next(((account_id, field) for account_id, field in wanted if logical_account_of(account_id)[1]
                        and account_id not in exact and account_id not in held), None)
    if named_shard is not None:
        raise object_not_found(Account, named_shard[0], scope=Scope.of_tenant(tenant_id, actor), action=action,
                               label="account", field=named_shard[1])
    missing_rows = [account_id for account_id, _ in wanted if not _covered(account_id, held, whole, exact)]
    locked = lock_accounts(missing_rows, tenant_id=tenant_id, lock=lock, whole=whole, pick=pick,
                           exact=[account_id for account_id in missing_rows if account_id in exact])
    held.update(locked)
    found = {*held, *(row.logical_id for row in held.values())}
    missing = first_missing((account_id for account_id, _ in wanted), found)
    if missing is not None:
        field = next(field for account_id, field in wanted if account_id == missing)
        raise object_not_found(Account, missing, scope=Scope.of_tenant(tenant_id, actor), action=action,
                               label="account", field=field)
    return held


_SYSTEM_OF_ACCOUNT = f"""
    SELECT system.id FROM {Account._meta.db_table} AS system
      JOIN {Account._meta.db_table} AS own ON own.id = %(account)s AND system.tenant_id = own.tenant_id
           AND system.currency = own.currency
     WHERE system.account_type = %(system_type)s AND system.is_system AND system.shard_of_id IS NULL"""
_ACCOUNT_WITH_SYSTEM_LOCK = f"""
    SELECT account.* FROM {_rows_of(f"ARRAY[%(account)s, ({_SYSTEM_OF_ACCOUNT})], ARRAY[%(account)s], %(pick)s")}
    WHERE account.tenant_id = %(tenant)s ORDER BY account.id {ROW_LOCK}"""


def lock_account_with_system(*, tenant_id: str, account_id: str, system_type: str, actor: Actor, action: str,
                             pick: int, field: str = "account") -> tuple[Account, Account | None, dict[str, Account]]:
    """The tenant's account, debited (every shard of it), and the shard `pick` chooses of its
    tenant's system account of `system_type` in the same currency (the reserve for a hold, the
    payout account for a payout), locked together in key order by one statement. Returns the
    account's row, the system account's row (None when the tenant has none) and every row."""
    rows = {a.id: a for a in Account.objects.raw(_ACCOUNT_WITH_SYSTEM_LOCK, {
        "tenant": tenant_id, "account": account_id, "system_type": system_type, "pick": pick})}
    if not any(row.logical_id == account_id for row in rows.values()):
        raise object_not_found(Account, account_id, scope=Scope.of_tenant(tenant_id, actor), action=action,
                               label="account", field=field)
    system = next((a for a in rows.values() if a.is_system and a.account_type == system_type
                   and a.logical_id != account_id), None)
    # (An account without a floor, a settlement account say, is locked as the one shard picked.)
    return locked_row(rows, account_id), system, rows


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


M = TypeVar("M", bound=Model)
_HOLD_COLUMNS: list[Field] = [field for field in Hold._meta.concrete_fields if isinstance(field, Field)]
_ACCOUNT_COLUMNS: list[Field] = [field for field in Account._meta.concrete_fields if isinstance(field, Field)]
_HELD_ACCOUNTS = ("ARRAY(SELECT held.account_id FROM held) || %(also)s::varchar[], '{}', %(pick)s, "
                  "ARRAY(SELECT held.reserve_account_id FROM held)")
_HOLD_WITH_ACCOUNTS_LOCK = f"""
    WITH held AS (
        SELECT {", ".join(f'hold."{f.column}"' for f in _HOLD_COLUMNS)},
               ARRAY(SELECT txn.kind || ':' || txn.id FROM {LedgerTransaction._meta.db_table} AS txn
                     WHERE txn.hold_id = hold.id ORDER BY txn.created_at, txn.id) AS transaction_refs
        FROM {Hold._meta.db_table} AS hold WHERE hold.id = %(hold)s AND hold.tenant_id = %(tenant)s
        FOR NO KEY UPDATE),
    accounts AS (
        SELECT account.* FROM {_rows_of(_HELD_ACCOUNTS)}
        WHERE account.tenant_id = %(tenant)s ORDER BY account.id {ROW_LOCK})
    SELECT held.*, {", ".join(f'accounts."{f.column}"' for f in _ACCOUNT_COLUMNS)}
    FROM held LEFT JOIN accounts ON true"""


def _loaded(model: type[M], fields: list[Field], values: Sequence[Any]) -> M:
    """A model instance from a row read by hand, its values converted as the ORM would (a
    JSON column arrives as text: the backend leaves decoding to the field)."""
    converted = [field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
                 for field, value in zip(fields, values, strict=True)]
    return model.from_db(connection.alias, [field.attname for field in fields], converted)


def lock_tenant_hold_with_accounts(*, tenant_id: str, hold_id: str, actor: Actor, action: str,
                                   also: Sequence[tuple[str, str]] = ()) -> tuple[Hold, dict[str, Account]]:
    """The tenant's hold with its transaction refs, then its account, its reserve account (the
    shard the hold credited) and the accounts named in `also` ((account id, request field)
    pairs; each credited, so the shard of it the hold's id picks), all locked by one statement
    in the one order: the hold first (the accounts' query reads it), then the rows by primary
    key. A capture or a release costs one round trip for its locks."""
    with connection.cursor() as cursor:
        cursor.execute(_HOLD_WITH_ACCOUNTS_LOCK, {"hold": hold_id, "tenant": tenant_id, "pick": shard_pick(hold_id),
                                                  "also": [account_id for account_id, _ in also]})
        rows = cursor.fetchall()
    scope = Scope.of_tenant(tenant_id, actor)
    if not rows:
        raise object_not_found(Hold, hold_id, scope=scope, action=action, label="hold")
    width = len(_HOLD_COLUMNS)
    hold = _loaded(Hold, _HOLD_COLUMNS, rows[0][:width])
    hold.transaction_refs = list(rows[0][width])  # type: ignore[attr-defined]
    locked = {account.id: account for row in rows if row[width + 1] is not None
              for account in [_loaded(Account, _ACCOUNT_COLUMNS, row[width + 1:])]}
    missing = first_missing((account_id for account_id, _ in also), {row.logical_id for row in locked.values()})
    if missing is not None:
        field = next(field for account_id, field in also if account_id == missing)
        raise object_not_found(Account, missing, scope=scope, action=action, label="account", field=field)
    return hold, locked


def lock_holds(hold_ids: Iterable[str], *, skip_locked: bool = False) -> list[Hold]:
    """Holds (of any tenant: the expiry job's view) in pk order, with their transaction refs."""
    ids = sorted(set(hold_ids))
    if not ids:
        return []
    return list(holds_with_transaction_refs(Hold.objects.select_for_update(of=("self",), skip_locked=skip_locked,
                                                                           no_key=True))
                .select_related("tenant").filter(pk__in=ids).order_by("pk"))


def lock_due_holds(*, now: datetime, batch: int) -> list[Hold]:
    """The expiry job's next batch: active holds past their expiry whose account takes entries,
    oldest first, skipping those another run holds (so runs share the work)."""
    return list(holds_with_transaction_refs(
        Hold.objects.select_for_update(of=("self",), skip_locked=True, no_key=True).select_related("tenant"))
        .filter(status=Hold.ACTIVE, expires_at__lte=now, account__status=Account.ACTIVE)
        .order_by("expires_at")[:batch])
