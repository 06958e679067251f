"""Checks shared by the ledger tests: what must hold of a tenant's ledger after any history.

They read the database directly (never the stored balances alone), so a lost update, a gap in
a sequence or a broken hash chain shows up whichever code path produced it.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import count

from audit.actors import Actor
from backoffice.services.bootstrap import tenant_bootstrap
from ledger.chain import GENESIS, entry_hash
from ledger.models import Account, LedgerEntry, LedgerTransaction
from ledger.services.accounts import account_create
from ledger.services.postings import EntryInput
from ledger.services.transfers import ledger_transaction_post
from webhooks.models import Event

SYSTEM = Actor.system("tests")
_slugs = count()


def new_tenant(prefix: str = "ledger", currency: str = "USD"):
    """A bootstrapped tenant with a slug no other test (or hypothesis example) uses."""
    tenant, _ = tenant_bootstrap(slug=f"{prefix}-{next(_slugs)}", name=prefix.title(), currency=currency,
                                 actor=SYSTEM)
    return tenant


def external_account(tenant, currency: str = "USD") -> Account:
    """Where money comes from: debit-normal, overdraft without limit (an asset at a bank)."""
    return account_create(tenant=tenant, currency=currency, account_type="external", normal_balance="debit",
                          allow_overdraft=True, actor=SYSTEM, name=f"External {currency}")


def customer_account(tenant, currency: str = "USD", **fields) -> Account:
    """A customer balance: credit-normal, no overdraft unless asked."""
    return account_create(tenant=tenant, currency=currency, account_type="customer", customer="cus_test",
                          actor=SYSTEM, **fields)


def transfer(tenant, source, destination, amount: int, **kwargs) -> LedgerTransaction:
    """Move `amount` from `source` to `destination` (both credit-normal customers, or a
    debit-normal external source): debit the source, credit the destination."""
    return ledger_transaction_post(tenant=tenant, actor=SYSTEM, entries=[
        EntryInput(account_id=_id(source), direction="debit", amount=amount),
        EntryInput(account_id=_id(destination), direction="credit", amount=amount)], **kwargs)


def _id(account) -> str:
    return account if isinstance(account, str) else account.id


def ledger_snapshot(tenant_ids=None) -> dict:
    """Everything a refused write must leave unchanged: row counts and every account's head."""
    txns, entries, events = LedgerTransaction.objects.all(), LedgerEntry.objects.all(), Event.objects.all()
    accounts = Account.rows.all()  # every physical row, shards of hot accounts included
    if tenant_ids is not None:
        txns, entries = txns.filter(tenant_id__in=tenant_ids), entries.filter(tenant_id__in=tenant_ids)
        events, accounts = events.filter(tenant_id__in=tenant_ids), accounts.filter(tenant_id__in=tenant_ids)
    return {
        "transactions": txns.count(),
        "entries": entries.count(),
        "events": events.count(),
        "accounts": sorted(accounts.values_list("id", "posted_balance", "last_sequence", "hash_head", "status")),
    }


def signed(direction: str, amount: int, normal_balance: str) -> int:
    return amount if direction == normal_balance else -amount


def assert_ledger_consistent(tenant) -> dict[str, int]:
    """Every invariant of docs/architecture.md's money model over one tenant's ledger.

    Returns the stored balance of each account, for callers that also keep a model.
    """
    balances: dict[str, int] = {}
    entries_of: dict[str, list[LedgerEntry]] = defaultdict(list)
    for row in LedgerEntry.objects.filter(account__tenant=tenant).order_by("account_id", "sequence"):
        entries_of[row.account_id].append(row)
    accounts = list(Account.rows.filter(tenant=tenant).order_by("id"))  # each shard keeps its own chain
    assert set(entries_of) <= {account.id for account in accounts}, "entries on another tenant's account"
    for account in accounts:
        rows = entries_of[account.id]
        sequences = [row.sequence for row in rows]
        assert sequences == list(range(1, len(rows) + 1)), f"{account.id}: sequences {sequences} have gaps"
        running, previous_hash, previous_at = 0, GENESIS, None
        for row in rows:
            assert row.tenant_id == account.tenant_id and row.currency == account.currency, row
            assert row.amount > 0, row
            running += signed(row.direction, row.amount, account.normal_balance)
            assert row.balance_after == running, f"{account.id} #{row.sequence}: balance_after {row.balance_after}, " \
                                                 f"entries sum to {running}"
            assert row.hash == entry_hash(previous_hash, row), f"{account.id} #{row.sequence}: hash chain broken"
            assert previous_at is None or row.created_at >= previous_at, f"{account.id} #{row.sequence}: dated early"
            previous_hash, previous_at = row.hash, row.created_at
        assert account.posted_balance == running, \
            f"{account.id}: stored balance {account.posted_balance}, entries sum to {running}"
        assert account.last_sequence == len(rows), \
            f"{account.id}: last_sequence {account.last_sequence}, {len(rows)} entries"
        assert account.hash_head == previous_hash, f"{account.id}: hash_head is not the last entry's hash"
        if not account.allow_overdraft:
            assert account.posted_balance >= 0, f"{account.id} is overdrawn: {account.posted_balance}"
        elif account.overdraft_limit is not None:
            assert account.posted_balance >= -account.overdraft_limit, f"{account.id} is past its limit"
        balances[account.id] = account.posted_balance

    # Trial balance: per currency, all debits equal all credits; and so does every transaction.
    totals: dict[str, int] = defaultdict(int)
    per_txn: dict[tuple[str, str], int] = defaultdict(int)
    per_txn_count: dict[str, int] = defaultdict(int)
    for row in (row for rows in entries_of.values() for row in rows):
        txn_id, direction, amount, currency = row.transaction_id, row.direction, row.amount, row.currency
        delta = amount if direction == "debit" else -amount
        totals[currency] += delta
        per_txn[(txn_id, currency)] += delta
        per_txn_count[txn_id] += 1
    assert {c: n for c, n in totals.items() if n} == {}, f"trial balance is not zero: {dict(totals)}"
    assert {k: n for k, n in per_txn.items() if n} == {}, "a transaction does not balance"
    txn_ids = set(LedgerTransaction.objects.filter(tenant=tenant).values_list("id", flat=True))
    assert txn_ids == set(per_txn_count), "a transaction has no entries"
    assert min(per_txn_count.values(), default=2) >= 2, "a transaction has a single entry"
    return balances
