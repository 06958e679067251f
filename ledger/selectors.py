"""Reads of the ledger: balances and the shapes the API and the admin show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone

from tenants.models import Tenant

from .models import Account, Hold, LedgerEntry, LedgerTransaction, shard_row_id


@dataclass(frozen=True)
class Balances:
    posted: int
    held: int
    available: int | None  # None: an overdraft without limit


def account_row_ids(account: Account) -> list[str]:
    """The physical rows of the account a row belongs to (its logical row or any of its shards):
    the logical row, then its shards (ARCHITECTURE.md, Hot accounts)."""
    return [shard_row_id(account.logical_id, shard) for shard in range(account.shard_count)]


def posted_balance_as_of(account: Account, as_of: datetime) -> int:
    """The balance_after of the account's last entry at or before `as_of`, summed over its rows:
    one index lookup per row (entries of a row are dated in sequence order, which the database
    enforces)."""
    if account.shard_count == 1:
        value = (LedgerEntry.objects.filter(account=account, created_at__lte=as_of)
                 .order_by("-created_at", "-sequence").values_list("balance_after", flat=True).first())
        return int(value or 0)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT COALESCE(SUM((SELECT e.balance_after FROM {LedgerEntry._meta.db_table} AS e
                                 WHERE e.account_id = row_id AND e.created_at <= %s
                                 ORDER BY e.created_at DESC, e.sequence DESC LIMIT 1)), 0)
            FROM unnest(%s::varchar[]) AS row_id""", [as_of, account_row_ids(account)])
        return int(cursor.fetchone()[0])


def posted_balance(account: Account) -> int:
    """The account's balance now: its row's, or the sum of its shards'."""
    if account.shard_count == 1:
        return account.posted_balance
    if hasattr(account, "shards_posted_total"):  # read with its page (with_hold_totals)
        return account.posted_balance + int(account.shards_posted_total)
    return int(Account.rows.filter(pk__in=account_row_ids(account))
               .aggregate(total=Sum("posted_balance", default=0))["total"])


def with_hold_totals(queryset: QuerySet[Account]) -> QuerySet[Account]:
    """Accounts carrying their hold totals, so a page of accounts costs one query, not one per
    account (hold_totals reads them from here)."""
    now = timezone.now()
    remaining = F("amount") - F("captured_amount") - F("released_amount")
    active = Hold.objects.filter(account=OuterRef("pk"), status=Hold.ACTIVE).values("account")

    def total(condition: Q) -> Coalesce:
        return Coalesce(Subquery(active.filter(condition).annotate(total=Sum(remaining)).values("total")), 0)

    shards = (Account.rows.filter(shard_of=OuterRef("pk")).values("shard_of")
              .annotate(total=Sum("posted_balance")).values("total"))
    return queryset.annotate(held_total=total(Q(expires_at__gt=now)), lapsed_total=total(Q(expires_at__lte=now)),
                             shards_posted_total=Coalesce(Subquery(shards), 0))


def hold_totals(account: Account, *, now: datetime | None = None) -> tuple[int, int]:
    """(held, expired but not yet released) remaining amounts of the account's active holds."""
    if now is None and hasattr(account, "held_total"):
        return int(account.held_total), int(account.lapsed_total)  # type: ignore[attr-defined]
    now = now or timezone.now()
    remaining = F("amount") - F("captured_amount") - F("released_amount")
    totals = Hold.objects.filter(account=account, status=Hold.ACTIVE).aggregate(
        held=Sum(remaining, filter=Q(expires_at__gt=now), default=0),
        lapsed=Sum(remaining, filter=Q(expires_at__lte=now), default=0))
    return int(totals["held"]), int(totals["lapsed"])


def hold_totals_as_of(account: Account, as_of: datetime) -> tuple[int, int]:
    """(held, lapsed) as they stood at an instant: each hold placed by then and not resolved
    by then, less what its captures had moved by then; held if it had not expired then."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT COALESCE(SUM(remaining) FILTER (WHERE expires_at > %(as_of)s), 0),
                   COALESCE(SUM(remaining) FILTER (WHERE expires_at <= %(as_of)s), 0)
            FROM (SELECT h.expires_at, h.amount - COALESCE((
                      SELECT SUM(e.amount) FROM ledger_ledgertransaction t
                      JOIN ledger_ledgerentry e ON e.transaction_id = t.id
                      WHERE t.hold_id = h.id AND t.kind IN ('capture', 'release', 'expiry')
                        AND t.created_at <= %(as_of)s AND e.account_id = h.reserve_account_id
                        AND e.direction = 'debit'), 0) AS remaining
                  FROM ledger_hold h
                  WHERE h.account_id = %(account)s AND h.created_at <= %(as_of)s
                    AND (h.resolved_at IS NULL OR h.resolved_at > %(as_of)s)) AS open_holds""",
                       {"account": account.id, "as_of": as_of})
        held, lapsed = cursor.fetchone()
        return int(held), int(lapsed)


def account_balances(account: Account, *, as_of: datetime | None = None) -> Balances:
    """posted: the ledger balance; held: active, unexpired holds' remaining amounts (already
    moved to the reserve account); available: posted plus lapsed holds (expired, not yet
    released: they no longer count) plus the overdraft limit."""
    if as_of is None:
        posted = posted_balance(account)
        held, lapsed = hold_totals(account)
    else:
        posted = posted_balance_as_of(account, as_of)
        held, lapsed = hold_totals_as_of(account, as_of)
    if account.allow_overdraft and account.overdraft_limit is None:
        available = None
    else:
        available = posted + lapsed + (account.overdraft_limit or 0 if account.allow_overdraft else 0)
    return Balances(posted=posted, held=held, available=available)


def account_statement(account: Account) -> QuerySet[LedgerEntry]:
    """The account's entries, of every shard; paginate on `sequence` (one row: its chain order)
    or, for a sharded account, on the entries' time-ordered ids (statement_order_field)."""
    if account.shard_count == 1:
        return LedgerEntry.objects.filter(account=account)
    return LedgerEntry.objects.filter(account_id__in=account_row_ids(account))


def statement_order_field(account: Account) -> str:
    return "sequence" if account.shard_count == 1 else "id"


def transactions_of(tenant: Tenant) -> QuerySet[LedgerTransaction]:
    """The tenant's transactions with what their public shape needs, in one query per page."""
    return LedgerTransaction.objects.filter(tenant=tenant).select_related("reversed_by").prefetch_related("entries")


def holds_with_transaction_refs(holds: QuerySet[Hold]) -> QuerySet[Hold]:
    """Holds carrying their ledger transactions as "kind:id" strings, oldest first, read in the
    statement that loads (or locks) them: a hold's public shape needs them after every step."""
    refs = (LedgerTransaction.objects.filter(hold_id=OuterRef("pk")).order_by("created_at", "id")
            .values(ref=Concat("kind", Value(":"), "id")))
    return holds.annotate(transaction_refs=ArraySubquery(refs))


def holds_of(tenant: Tenant) -> QuerySet[Hold]:
    """The tenant's holds, each carrying its transaction refs (no query per hold)."""
    return holds_with_transaction_refs(Hold.objects.filter(tenant=tenant))


_system_account_ids: dict[tuple[str, str, str], str] = {}


def system_account_id(tenant_id: str, currency: str, account_type: str) -> str | None:
    """The id of the tenant's system account of `account_type` in `currency`, remembered by
    the process once found: a tenant has at most one (account_one_system_account_per_type),
    and an account is never deleted, so the id cannot change. A miss is not remembered."""
    key = (tenant_id, currency, account_type)
    if key not in _system_account_ids:
        found = (Account.objects.filter(tenant_id=tenant_id, currency=currency, account_type=account_type,
                                        is_system=True).values_list("id", flat=True).first())
        if found is None:
            return None
        _system_account_ids[key] = found
    return _system_account_ids[key]


def reserve_account_of(tenant: Tenant, currency: str) -> Account | None:
    # The default manager: the logical account, never one of its shard rows.
    return Account.objects.filter(tenant=tenant, currency=currency, account_type="reserve", is_system=True).first()


HOLD_STATUSES = ["active", "captured", "released", "expired"]


def holds_with_effective_status(status: str) -> Q:
    """Filter on the status a client sees: an active hold past its expiry is expired."""
    now = timezone.now()
    if status == Hold.ACTIVE:
        return Q(status=Hold.ACTIVE, expires_at__gt=now)
    if status == Hold.EXPIRED:
        return Q(status=Hold.EXPIRED) | Q(status=Hold.ACTIVE, expires_at__lte=now)
    return Q(status=status)
