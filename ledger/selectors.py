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

from .models import Account, Hold, LedgerEntry, LedgerTransaction


@dataclass(frozen=True)
class Balances:
    posted: int
    held: int
    available: int | None  # None: an overdraft without limit


def posted_balance_as_of(account: Account, as_of: datetime) -> int:
    """The balance_after of the account's last entry at or before `as_of`: one index lookup
    (entries of an account are dated in sequence order, which the database enforces)."""
    value = (LedgerEntry.objects.filter(account=account, created_at__lte=as_of)
             .order_by("-created_at", "-sequence").values_list("balance_after", flat=True).first())
    return int(value or 0)


def with_hold_totals(queryset: QuerySet[Account]) -> QuerySet[Account]:
    """Accounts carrying their hold totals, so a page of accounts costs one query, not one per
    account (hold_totals reads them from here)."""
    now = timezone.now()
    remaining = F("amount") - F("captured_amount") - F("released_amount")
    active = Hold.objects.filter(account=OuterRef("pk"), status=Hold.ACTIVE).values("account")

    def total(condition: Q) -> Coalesce:
        return Coalesce(Subquery(active.filter(condition).annotate(total=Sum(remaining)).values("total")), 0)

    return queryset.annotate(held_total=total(Q(expires_at__gt=now)), lapsed_total=total(Q(expires_at__lte=now)))


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
        posted = account.posted_balance
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
    """The account's entries; paginate on `sequence`, newest first."""
    return LedgerEntry.objects.filter(account=account)


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
