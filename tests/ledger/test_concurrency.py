"""Postings racing on real, separate database connections (one per thread, as in production
one per worker). Nothing is mocked: the row locks of ledger/locks.py and the database's
constraints are what keeps the ledger right, and what these tests would catch failing."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict

import pytest
from django.db import connection, connections

from ledger.errors import AlreadyReversed, InsufficientFunds
from ledger.models import Account, LedgerEntry, LedgerTransaction
from ledger.services.postings import EntryInput
from ledger.services.transfers import ledger_transaction_post, ledger_transaction_reverse
from webhooks.models import Event

from .checks import SYSTEM, assert_ledger_consistent, customer_account, external_account, new_tenant, transfer

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(workers: int, work, *, timeout: float = 120) -> list:
    """Runs work(i) in `workers` threads released together by a barrier; returns each
    result or the exception it raised. Each thread has (and closes) its own connection."""
    barrier = threading.Barrier(workers)
    results: list = [None] * workers

    def run(index: int) -> None:
        try:
            connection.ensure_connection()  # connect before the barrier, so the calls really overlap
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - reported to the test, which decides
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), name=f"poster-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a worker hung (deadlock?)"
    return results


# 8 workers x 200 transfers, as the issue asks; about 10 s on a 2-core machine.
WORKERS, TRANSFERS_PER_WORKER, ACCOUNTS, OPENING = 8, 200, 10, 10_000


def test_parallel_random_transfers_keep_every_balance_and_lose_no_update():
    # given: ten funded customer accounts of one tenant
    tenant = new_tenant("race")
    bank = external_account(tenant)
    accounts = [customer_account(tenant, name=f"c{i}") for i in range(ACCOUNTS)]
    for account in accounts:
        transfer(tenant, bank, account, OPENING)
    ids = [account.id for account in accounts]

    def work(worker: int) -> dict:
        rng = random.Random(1_000 + worker)
        posted, refused, unexpected = [], 0, []
        for _ in range(TRANSFERS_PER_WORKER):
            source, *destinations = rng.sample(ids, 3)
            amount = rng.randint(1, 4_000)
            if rng.random() < 0.25:  # a split: one debit, two credits, three accounts locked
                part = rng.randint(0, amount - 1) if amount > 1 else 0
                legs = [(destinations[0], amount - part), (destinations[1], part)]
            else:
                legs = [(destinations[0], amount)]
            legs = [(account_id, leg) for account_id, leg in legs if leg > 0]
            entries = [EntryInput(account_id=source, direction="debit", amount=amount)] + [
                EntryInput(account_id=account_id, direction="credit", amount=leg) for account_id, leg in legs]
            try:
                txn = ledger_transaction_post(tenant=tenant, entries=entries, actor=SYSTEM)
            except InsufficientFunds:
                refused += 1
            except Exception as exc:  # noqa: BLE001 - any other error is a failure of the test
                unexpected.append(repr(exc))
            else:
                posted.append((txn.id, source, amount, legs))
        return {"posted": posted, "refused": refused, "unexpected": unexpected}

    # when
    results = in_threads(WORKERS, work)

    # then: no worker died and no client saw a deadlock, a serialization failure or anything else
    crashed = [result for result in results if isinstance(result, BaseException)]
    assert crashed == []
    assert [error for result in results for error in result["unexpected"]] == []
    posted = [item for result in results for item in result["posted"]]
    refused = sum(result["refused"] for result in results)
    assert len(posted) + refused == WORKERS * TRANSFERS_PER_WORKER
    assert posted and refused, "the mix should both succeed and run short of funds"
    # every successful call committed exactly one transaction and one event, and nothing else did
    assert LedgerTransaction.objects.filter(tenant=tenant).count() == ACCOUNTS + len(posted)
    assert set(LedgerTransaction.objects.filter(tenant=tenant).values_list("id", flat=True)) >= {
        txn_id for txn_id, *_ in posted}
    assert Event.objects.filter(tenant=tenant, type="transaction.posted").count() == ACCOUNTS + len(posted)
    # no lost update: the stored balances are what the successful calls add up to
    expected = defaultdict(int, {account_id: OPENING for account_id in ids})
    for _, source, amount, legs in posted:
        expected[source] -= amount
        for account_id, leg in legs:
            expected[account_id] += leg
    stored = dict(Account.objects.filter(pk__in=ids).values_list("id", "posted_balance"))
    assert stored == dict(expected)
    assert sum(stored.values()) == ACCOUNTS * OPENING
    # and the whole ledger: balance = sum of entries = last balance_after, gapless sequences,
    # hash chains, zero trial balance, no account below zero
    assert_ledger_consistent(tenant)
    entry_counts = Counter(LedgerEntry.objects.filter(account_id__in=ids).values_list("account_id", flat=True))
    assert dict(Account.objects.filter(pk__in=ids).values_list("id", "last_sequence")) == dict(entry_counts)


def test_parallel_debits_take_a_no_overdraft_account_exactly_to_zero():
    # given: an account holding 10,000 and 20 workers each moving 1,000 out at the same instant
    tenant = new_tenant("drain")
    bank = external_account(tenant)
    source, sink = customer_account(tenant), customer_account(tenant)
    transfer(tenant, bank, source, 10_000)

    # when
    results = in_threads(20, lambda _: transfer(tenant, source, sink, 1_000))

    # then: exactly the affordable ten succeed, the others are told why
    outcomes = Counter(type(result).__name__ for result in results)
    assert outcomes == {"LedgerTransaction": 10, "InsufficientFunds": 10}, [r for r in results
                                                                             if isinstance(r, Exception)]
    source.refresh_from_db()
    sink.refresh_from_db()
    assert source.posted_balance == 0 and sink.posted_balance == 10_000
    balances_after = list(LedgerEntry.objects.filter(account=source).order_by("sequence")
                          .values_list("balance_after", flat=True))
    assert balances_after == list(range(10_000, -1, -1_000)), "the balance went below zero on the way"
    assert_ledger_consistent(tenant)


def test_parallel_reversals_of_one_transaction_reverse_it_once():
    # given
    tenant = new_tenant("reverse")
    bank = external_account(tenant)
    alice, bob = customer_account(tenant), customer_account(tenant)
    transfer(tenant, bank, alice, 5_000)
    original = transfer(tenant, alice, bob, 1_000)

    # when: five workers reverse it at once
    results = in_threads(5, lambda _: ledger_transaction_reverse(tenant=tenant, transaction_id=original.id,
                                                                 actor=SYSTEM, reason="race"))

    # then
    outcomes = Counter(type(result).__name__ for result in results)
    assert outcomes == {"LedgerTransaction": 1, "AlreadyReversed": 4}, [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(result, (LedgerTransaction, AlreadyReversed)) for result in results)
    reversals = LedgerTransaction.objects.filter(reverses=original)
    assert reversals.count() == 1 and reversals.get().kind == "reversal"
    assert Event.objects.filter(tenant=tenant, type="transaction.reversed").count() == 1
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.posted_balance, bob.posted_balance) == (5_000, 0)
    assert_ledger_consistent(tenant)


def test_opposite_transfers_between_two_accounts_do_not_deadlock():
    """A->B and B->A at once: each locks both rows; only a fixed lock order keeps the two
    from waiting on each other."""
    # given
    tenant = new_tenant("cross")
    bank = external_account(tenant)
    alice, bob = customer_account(tenant), customer_account(tenant)
    transfer(tenant, bank, alice, 100_000)
    transfer(tenant, bank, bob, 100_000)

    def work(worker: int) -> list:
        source, destination = (alice, bob) if worker % 2 == 0 else (bob, alice)
        errors = []
        for _ in range(50):
            try:
                transfer(tenant, source, destination, 7)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
        return errors

    # when
    results = in_threads(6, work)

    # then
    assert results == [[]] * 6
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert alice.posted_balance == bob.posted_balance == 100_000
    assert LedgerTransaction.objects.filter(tenant=tenant).count() == 2 + 6 * 50
    assert_ledger_consistent(tenant)
