"""The ledger's invariants hold in PostgreSQL itself (migration 0003), not only in Python.

Each test builds a valid ledger through the services, then writes behind the ORM's back with
raw SQL and proves that the database refuses it and that nothing of the attempt is left.
The zero-sum and account-head checks are deferred to COMMIT, so their tests commit for real
(`committing`, transaction=True): a test that only ever rolls back could not see them fire. The
other rules are checked at the statement, which a test transaction shows as well (and faster).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from ledger.models import Account, LedgerEntry, LedgerTransaction, new_entry_id, new_transaction_id
from ledger.services.accounts import account_close, account_freeze

from .checks import (
    SYSTEM,
    assert_ledger_consistent,
    customer_account,
    external_account,
    ledger_snapshot,
    new_tenant,
    signed,
    transfer,
)

pytestmark = pytest.mark.django_db
committing = pytest.mark.django_db(transaction=True)


class RawLedger:
    """Writes ledger rows with plain SQL, computing by default what the triggers expect
    (the next sequence and running balance of each account), so that each test breaks
    exactly one rule and the refusal is for that rule."""

    def __init__(self, cursor):
        self.cursor = cursor
        self.heads: dict[str, list[int]] = {}

    def head(self, account: Account) -> list[int]:
        if account.id not in self.heads:
            self.cursor.execute("SELECT last_sequence, posted_balance FROM ledger_account WHERE id = %s", [account.id])
            self.heads[account.id] = list(self.cursor.fetchone())
        return self.heads[account.id]

    def txn(self, tenant_id: str, *, kind: str = "transfer") -> str:
        txn_id = new_transaction_id()
        now = timezone.now()
        self.cursor.execute(
            "INSERT INTO ledger_ledgertransaction (id, tenant_id, kind, description, metadata, reverses_id,"
            " effective_at, created_at, source_request_id, actor)"
            " VALUES (%s, %s, %s, 'raw', '{}'::jsonb, NULL, %s, %s, '', 'test:raw')",
            [txn_id, tenant_id, kind, now, now])
        return txn_id

    def entry(self, txn_id: str, account: Account, direction: str, amount: int, *, tenant_id: str | None = None,
              currency: str | None = None, sequence: int | None = None, balance_after: int | None = None,
              created_at=None) -> str:
        head = self.head(account)
        expected_sequence = head[0] + 1
        expected_balance = head[1] + signed(direction, amount, account.normal_balance)
        entry_id = new_entry_id()
        self.cursor.execute(
            "INSERT INTO ledger_ledgerentry (id, tenant_id, transaction_id, account_id, direction, amount, currency,"
            " sequence, balance_after, hash, key_id, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'legacy', %s)",
            [entry_id, tenant_id or account.tenant_id, txn_id, account.id, direction, amount,
             currency or account.currency, expected_sequence if sequence is None else sequence,
             expected_balance if balance_after is None else balance_after, "0" * 64, created_at or timezone.now()])
        head[0], head[1] = expected_sequence, expected_balance
        return entry_id

    def move_accounts(self) -> None:
        """What a posting does after its entries: the account rows follow their last entry."""
        for account_id, (sequence, balance) in self.heads.items():
            self.cursor.execute("UPDATE ledger_account SET last_sequence = %s, posted_balance = %s WHERE id = %s",
                                [sequence, balance, account_id])


@pytest.fixture
def book():
    """A tenant with USD and EUR accounts, funded through the service: alice 10,000, bob 5,000."""

    class Book:
        tenant = new_tenant("raw")
        usd_external = external_account(tenant)
        eur_external = external_account(tenant, "EUR")
        alice = customer_account(tenant)
        bob = customer_account(tenant)
        eur_customer = customer_account(tenant, "EUR")
        first = transfer(tenant, usd_external, alice, 10_000)
        second = transfer(tenant, usd_external, bob, 5_000)

        def refresh(self):
            for name in ("usd_external", "eur_external", "alice", "bob", "eur_customer"):
                getattr(self, name).refresh_from_db()

    book = Book()
    book.refresh()
    return book


def sqlstate(excinfo) -> str | None:
    return getattr(excinfo.value.__cause__, "sqlstate", None)


def constraint_name(excinfo) -> str | None:
    diag = getattr(excinfo.value.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


# --- control: the raw writer itself is right ------------------------------------------------------------


@committing
def test_a_raw_posting_that_follows_every_rule_commits(book):
    # given
    before = ledger_snapshot()
    # when: everything a posting does, by hand
    with transaction.atomic(), connection.cursor() as cursor:
        raw = RawLedger(cursor)
        txn_id = raw.txn(book.tenant.id)
        raw.entry(txn_id, book.alice, "debit", 700)
        raw.entry(txn_id, book.bob, "credit", 700)
        raw.move_accounts()
    # then: the database accepts it, so each refusal below is for the one rule the test breaks
    after = ledger_snapshot()
    assert after["transactions"] == before["transactions"] + 1 and after["entries"] == before["entries"] + 2
    assert Account.objects.get(pk=book.alice.id).posted_balance == 9_300
    assert Account.objects.get(pk=book.bob.id).posted_balance == 5_700


# --- zero sum, at commit ----------------------------------------------------------------------------------


@committing
def test_unbalanced_transaction_is_refused_at_commit(book):
    # given
    before = ledger_snapshot()
    statements_accepted = False
    # when: debit 700, credit 600; the accounts move consistently, so only the zero sum is broken
    with pytest.raises(IntegrityError, match="unbalanced in USD") as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.alice, "debit", 700)
            raw.entry(txn_id, book.bob, "credit", 600)
            raw.move_accounts()
            statements_accepted = True
    # then: each statement passed; COMMIT refused the whole
    assert statements_accepted, "the zero-sum check must be deferred to commit"
    assert sqlstate(refused) == "23514"
    assert ledger_snapshot() == before


@committing
def test_transaction_balanced_overall_but_not_per_currency_is_refused(book):
    # given
    before = ledger_snapshot()
    # when: debit 500 USD, credit 500 EUR: zero in total, unbalanced in each currency
    with pytest.raises(IntegrityError, match="is unbalanced in (EUR|USD)"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.alice, "debit", 500)
            raw.entry(txn_id, book.eur_customer, "credit", 500)
            raw.move_accounts()
    # then
    assert ledger_snapshot() == before


@committing
def test_transaction_with_a_single_entry_is_refused(book):
    # given
    before = ledger_snapshot()
    # when: one entry on an overdraft account, the account following it
    with pytest.raises(IntegrityError, match="has 1 entries; a posting needs at least two"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.usd_external, "debit", 100)
            raw.move_accounts()
    # then
    assert ledger_snapshot() == before


@committing
def test_transaction_without_entries_is_refused(book):
    # given
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError, match="has 0 entries"):
        with transaction.atomic(), connection.cursor() as cursor:
            RawLedger(cursor).txn(book.tenant.id)
    # then
    assert ledger_snapshot() == before


@committing
def test_a_second_unbalanced_entry_added_later_to_a_posted_transaction_is_refused(book):
    # given: a posted, balanced transaction
    before = ledger_snapshot()
    # when: a third entry is appended to it in a later transaction
    with pytest.raises(IntegrityError, match="unbalanced"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            raw.entry(book.first.id, book.alice, "credit", 1)
            raw.move_accounts()
    # then
    assert ledger_snapshot() == before


# --- append-only ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_ledgerentry SET amount = amount + 1 WHERE transaction_id = %s",
    "UPDATE ledger_ledgerentry SET created_at = created_at WHERE transaction_id = %s",
    "DELETE FROM ledger_ledgerentry WHERE transaction_id = %s",
    "UPDATE ledger_ledgertransaction SET description = 'edited' WHERE id = %s",
    "UPDATE ledger_ledgertransaction SET metadata = metadata WHERE id = %s",
    "DELETE FROM ledger_ledgertransaction WHERE id = %s",
], ids=["update-entry-amount", "update-entry-noop", "delete-entry", "update-txn", "update-txn-noop", "delete-txn"])
def test_entries_and_transactions_are_append_only(book, statement):
    # given
    before = ledger_snapshot()
    entries_before = list(LedgerEntry.objects.filter(transaction=book.first).values())
    # when
    with pytest.raises(IntegrityError, match="append-only") as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [book.first.id])
    # then
    assert sqlstate(refused) == "23001"  # restrict_violation
    assert ledger_snapshot() == before
    assert list(LedgerEntry.objects.filter(transaction=book.first).values()) == entries_before


@committing  # within the test's own transaction the postings' deferred checks would block any TRUNCATE
@pytest.mark.parametrize("tables", [
    "ledger_ledgerentry, ledger_ledgertransaction CASCADE", "ledger_account CASCADE", "ledger_hold CASCADE",
], ids=["entries-and-transactions", "accounts", "holds"])
def test_truncate_of_ledger_tables_is_refused_even_for_a_superuser(book, tables):
    # given: the test connection is a PostgreSQL superuser, the strongest role there is
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError, match="TRUNCATE of .* refused") as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables}")
    # then
    assert sqlstate(refused) == "23001"
    assert ledger_snapshot() == before


@pytest.mark.parametrize("column, value", [("normal_balance", "debit"), ("currency", "EUR")])
def test_currency_and_normal_balance_of_an_account_with_entries_cannot_change(book, column, value):
    # given
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError, match="cannot change") as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"UPDATE ledger_account SET {column} = %s WHERE id = %s", [value, book.alice.id])
    # then
    assert sqlstate(refused) == "23001"
    assert ledger_snapshot() == before
    assert Account.objects.get(pk=book.alice.id).normal_balance == "credit"


def test_an_account_without_entries_may_still_be_corrected(book):
    # given
    fresh = customer_account(book.tenant)
    # when
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET normal_balance = 'debit' WHERE id = %s", [fresh.id])
    # then
    assert Account.objects.get(pk=fresh.id).normal_balance == "debit"


# --- tenant and currency of an entry -----------------------------------------------------------------------


def test_entry_in_another_currency_than_its_account_is_refused(book):
    # given
    before = ledger_snapshot()
    # when: an EUR entry on the USD account alice, balanced in EUR by another EUR entry
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.eur_external, "debit", 100)
            raw.entry(txn_id, book.alice, "credit", 100, currency="EUR")
            raw.move_accounts()
    # then
    assert constraint_name(refused) == "entry_account_same_tenant_and_currency"
    assert ledger_snapshot() == before


def test_entry_of_another_tenant_than_its_account_is_refused(book):
    # given: a second tenant whose transaction the entries claim to belong to
    other = new_tenant("other")
    before = ledger_snapshot()
    # when: entries tagged with the other tenant (as is their transaction), on this tenant's accounts
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(other.id)
            raw.entry(txn_id, book.alice, "debit", 100, tenant_id=other.id)
            raw.entry(txn_id, book.bob, "credit", 100, tenant_id=other.id)
            raw.move_accounts()
    # then
    assert constraint_name(refused) == "entry_account_same_tenant_and_currency"
    assert ledger_snapshot() == before


def test_entry_of_another_tenant_than_its_transaction_is_refused(book):
    # given: a transaction row of a second tenant
    other = new_tenant("other")
    before = ledger_snapshot()
    # when: entries of this tenant's accounts (tagged with this tenant) hang on the other's transaction
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(other.id)
            raw.entry(txn_id, book.alice, "debit", 100)
            raw.entry(txn_id, book.bob, "credit", 100)
            raw.move_accounts()
    # then
    assert constraint_name(refused) == "entry_transaction_same_tenant"
    assert ledger_snapshot() == before


def test_entries_of_a_transaction_that_does_not_exist_are_refused_by_the_composite_key(book):
    # given: entries carry only the composite keys (migration 0016 dropped the single-column ones)
    before = ledger_snapshot()
    # when: balanced entries naming a transaction id that no row has
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            raw.entry("txn_nowhere", book.alice, "debit", 100)
            raw.entry("txn_nowhere", book.bob, "credit", 100)
            raw.move_accounts()
    # then
    assert constraint_name(refused) == "entry_transaction_same_tenant"
    assert ledger_snapshot() == before


def test_a_transaction_naming_a_hold_that_does_not_exist_is_refused_by_the_composite_key(book):
    before = ledger_snapshot()
    # when: an expiry transaction of a hold id that no row has
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_ledgertransaction (id, tenant_id, kind, description, metadata, hold_id,"
                " effective_at, created_at, source_request_id, actor)"
                " VALUES ('txn_of_no_hold', %s, 'expiry', 'raw', '{}'::jsonb, 'hold_nowhere', now(), now(), '',"
                " 'test:raw')", [book.tenant.id])
    # then
    assert constraint_name(refused) == "txn_hold_same_tenant"
    assert ledger_snapshot() == before


# --- amounts and the overdraft CHECK -----------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -100])
def test_entry_amount_must_be_positive(book, amount):
    # given
    before = ledger_snapshot()
    # when: a "debit" of a non-positive amount, with a balance_after that agrees with it
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.alice, "debit", amount)
            raw.entry(txn_id, book.bob, "credit", amount)
            raw.move_accounts()
    # then
    assert constraint_name(refused) == "entry_amount_positive"
    assert ledger_snapshot() == before


@pytest.mark.parametrize("new_balance", [-1, -10_000])
def test_posted_balance_below_zero_on_a_no_overdraft_account_is_refused_by_the_check(book, new_balance):
    # given
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_account SET posted_balance = %s WHERE id = %s", [new_balance, book.alice.id])
    # then: refused by the CHECK itself, at the statement
    assert constraint_name(refused) == "account_balance_within_overdraft"
    assert ledger_snapshot() == before


def test_posted_balance_past_the_overdraft_limit_is_refused_by_the_check(book):
    # given: an account that may go 500 below zero
    limited = customer_account(book.tenant, allow_overdraft=True, overdraft_limit=500)
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_account SET posted_balance = -501 WHERE id = %s", [limited.id])
    # then
    assert constraint_name(refused) == "account_balance_within_overdraft"
    assert ledger_snapshot() == before


@committing
def test_a_raw_posting_that_overdraws_a_no_overdraft_account_is_refused(book):
    # given: bob holds 5,000
    before = ledger_snapshot()
    # when: a balanced posting moves 5,001 out of bob, entries and account consistent
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.bob, "debit", 5_001)
            raw.entry(txn_id, book.alice, "credit", 5_001)
            raw.move_accounts()
    # then
    assert constraint_name(refused) == "account_balance_within_overdraft"
    assert ledger_snapshot() == before


# --- the account row agrees with its last entry, at commit ------------------------------------------------


@committing
@pytest.mark.parametrize("assignment", ["posted_balance = posted_balance + 1", "posted_balance = posted_balance - 1",
                                        "last_sequence = last_sequence + 1"])
def test_account_head_that_disagrees_with_its_last_entry_is_refused_at_commit(book, assignment):
    # given
    before = ledger_snapshot()
    statements_accepted = False
    # when
    with pytest.raises(IntegrityError, match="but its entries end at") as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"UPDATE ledger_account SET {assignment} WHERE id = %s", [book.alice.id])
            statements_accepted = True
    # then
    assert statements_accepted, "the account-head check must be deferred to commit"
    assert sqlstate(refused) == "23514"
    assert ledger_snapshot() == before


@committing
def test_entries_posted_without_moving_the_account_balance_are_refused_at_commit(book):
    """A raw posting that appends balanced, well-sequenced entries but leaves the account
    rows as they were: the stored balance no longer equals the last balance_after."""
    # given
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError, match="but its entries end at"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.alice, "debit", 700)
            raw.entry(txn_id, book.bob, "credit", 700)
            # no raw.move_accounts()
    # then
    assert ledger_snapshot() == before
    assert_ledger_consistent(book.tenant)


# --- sequence, running balance, date order -----------------------------------------------------------------


@pytest.mark.parametrize("offset", [2, 0, -1], ids=["gap", "repeat", "backwards"])
def test_entry_with_a_wrong_sequence_is_refused(book, offset):
    # given: alice's last entry has sequence 1
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError, match=r"has sequence -?\d+, expected 2"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.alice, "debit", 100, sequence=1 + offset)
            raw.entry(txn_id, book.bob, "credit", 100)
            raw.move_accounts()
    # then
    assert ledger_snapshot() == before


@pytest.mark.parametrize("balance_after", [10_000, 9_899, 10_100, 0])
def test_entry_with_a_wrong_balance_after_is_refused(book, balance_after):
    # given: alice holds 10,000; a debit of 100 must leave 9,900
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError, match="has balance_after .*, expected 9900"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.alice, "debit", 100, balance_after=balance_after)
            raw.entry(txn_id, book.bob, "credit", 100)
            raw.move_accounts()
    # then
    assert ledger_snapshot() == before


def test_entry_dated_before_its_predecessor_is_refused(book):
    # given
    before = ledger_snapshot()
    earlier = LedgerEntry.objects.get(account=book.alice).created_at - timedelta(seconds=1)
    # when
    with pytest.raises(IntegrityError, match="dated before its predecessor"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.alice, "debit", 100, created_at=earlier)
            raw.entry(txn_id, book.bob, "credit", 100)
            raw.move_accounts()
    # then
    assert ledger_snapshot() == before


# --- only active accounts take entries --------------------------------------------------------------------


def test_entry_on_a_frozen_account_is_refused(book):
    # given
    account_freeze(tenant=book.alice.tenant, account_id=book.alice.id, actor=SYSTEM, reason="test")
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError, match="is frozen; it takes no entries"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.usd_external, "debit", 100)
            raw.entry(txn_id, book.alice, "credit", 100)
            raw.move_accounts()
    # then
    assert ledger_snapshot() == before


def test_entry_on_a_closed_account_is_refused(book):
    # given: an empty account, closed
    empty = customer_account(book.tenant)
    account_close(tenant=empty.tenant, account_id=empty.id, actor=SYSTEM, reason="test")
    before = ledger_snapshot()
    # when
    with pytest.raises(IntegrityError, match="is closed; it takes no entries"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = RawLedger(cursor)
            txn_id = raw.txn(book.tenant.id)
            raw.entry(txn_id, book.usd_external, "debit", 100)
            raw.entry(txn_id, empty, "credit", 100)
            raw.move_accounts()
    # then
    assert ledger_snapshot() == before


# --- and the ledger built through the services passes every check -----------------------------------------


@committing
def test_the_fixture_ledger_is_consistent_after_all_refusals(book):
    # given: a refused attempt of each deferred kind
    for breaker in ("UPDATE ledger_account SET posted_balance = posted_balance + 1 WHERE id = %s",
                    "DELETE FROM ledger_ledgerentry WHERE account_id = %s"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(breaker, [book.alice.id])
    # when
    balances = assert_ledger_consistent(book.tenant)
    # then
    assert balances[book.alice.id] == 10_000 and balances[book.bob.id] == 5_000
    assert balances[book.usd_external.id] == 15_000
    assert LedgerTransaction.objects.filter(tenant=book.tenant).count() == 2
