"""A hypothesis state machine over one tenant's ledger: it posts valid and invalid transfers,
reverses earlier transactions, freezes and unfreezes accounts and reads balances (now and as of
earlier instants), predicting every outcome from a plain Python model; after each step every
invariant of the ledger is checked against the database.

Postings commit for real (transaction=True), so the deferred triggers of migration 0003 run
on every step too."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from audit.actors import Actor
from ledger.errors import AccountNotActive, AlreadyReversed, InsufficientFunds, UnbalancedTransaction
from ledger.services.accounts import account_freeze, account_unfreeze
from ledger.services.postings import EntryInput
from ledger.services.transfers import ledger_transaction_post, ledger_transaction_reverse
from tenants.models import ApiKey
from tenants.services.api_keys import api_key_create
from zentra.errors import InvalidStateTransition

from ..conftest import api_client
from .checks import SYSTEM, assert_ledger_consistent, customer_account, external_account, new_tenant

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_NAMES = ["bank", "alice", "bob", "carol", "limited"]


@dataclass
class ModelAccount:
    id: str
    normal: str
    floor: int | None  # lowest balance allowed; None: unlimited overdraft
    balance: int = 0
    frozen: bool = False


@dataclass
class ModelTransaction:
    id: str
    kind: str
    entries: list[tuple[str, str, int]]  # (account name, direction, amount)
    reversed: bool = False


@dataclass
class Snapshot:
    at: object
    balances: dict[str, int] = field(default_factory=dict)


def mirrored(entries):
    return [(name, "credit" if direction == "debit" else "debit", amount) for name, direction, amount in entries]


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def open_books(self):
        self.tenant = new_tenant("machine")
        _, raw_key = api_key_create(tenant=self.tenant, name="read", scope=ApiKey.SCOPE_READ, actor=SYSTEM)
        self.client = api_client(raw_key)
        created = {
            "bank": (external_account(self.tenant), None),
            "alice": (customer_account(self.tenant, name="alice"), 0),
            "bob": (customer_account(self.tenant, name="bob"), 0),
            "carol": (customer_account(self.tenant, name="carol"), 0),
            "limited": (customer_account(self.tenant, name="limited", allow_overdraft=True, overdraft_limit=300), -300),
        }
        self.accounts = {name: ModelAccount(id=account.id, normal=account.normal_balance, floor=floor)
                         for name, (account, floor) in created.items()}
        self.transactions: list[ModelTransaction] = []
        self.snapshots: list[Snapshot] = [Snapshot(at=timezone.now(), balances=self.balances())]

    # --- the model ------------------------------------------------------------------------------

    def balances(self) -> dict[str, int]:
        return {name: account.balance for name, account in self.accounts.items()}

    def predict(self, entries) -> type[Exception] | None:
        """What the service must answer, in its order of checks: account state, balance, funds."""
        if any(self.accounts[name].frozen for name, _, _ in entries):
            return AccountNotActive
        if sum(amount if direction == "debit" else -amount for _, direction, amount in entries) != 0:
            return UnbalancedTransaction
        deltas: dict[str, int] = {}
        for name, direction, amount in entries:
            account = self.accounts[name]
            deltas[name] = deltas.get(name, 0) + (amount if direction == account.normal else -amount)
        for name, delta in deltas.items():
            account = self.accounts[name]
            if delta < 0 and account.floor is not None and account.balance + delta < account.floor:
                return InsufficientFunds
        return None

    def apply(self, entries) -> None:
        for name, direction, amount in entries:
            account = self.accounts[name]
            account.balance += amount if direction == account.normal else -amount

    def record(self) -> None:
        self.snapshots.append(Snapshot(at=timezone.now(), balances=self.balances()))

    def entry_inputs(self, entries) -> list[EntryInput]:
        return [EntryInput(account_id=self.accounts[name].id, direction=direction, amount=amount)
                for name, direction, amount in entries]

    def outcome(self, call) -> tuple[object | None, type[Exception] | None]:
        try:
            return call(), None
        except (AccountNotActive, UnbalancedTransaction, InsufficientFunds, AlreadyReversed,
                InvalidStateTransition) as exc:
            return None, type(exc)

    # --- rules ----------------------------------------------------------------------------------

    @rule(destination=st.sampled_from(ACCOUNT_NAMES[1:]), amount=st.integers(1, 10_000))
    def fund(self, destination, amount):
        self.post([("bank", "debit", amount), (destination, "credit", amount)])

    @rule(source=st.sampled_from(ACCOUNT_NAMES[1:]), destination=st.sampled_from(ACCOUNT_NAMES),
          amount=st.integers(1, 2_500), split=st.integers(0, 100))
    def move(self, source, destination, amount, split):
        """A transfer between customers, sometimes split over two destinations; overdrafts included."""
        others = [name for name in ACCOUNT_NAMES[1:] if name not in (source, destination)]
        part = amount * split // 100
        entries = [(source, "debit", amount), (destination, "credit", amount - part)]
        if part:
            entries.append((others[0], "credit", part))
        self.post([entry for entry in entries if entry[2] > 0])

    @rule(source=st.sampled_from(ACCOUNT_NAMES), destination=st.sampled_from(ACCOUNT_NAMES),
          amount=st.integers(2, 5_000), skew=st.integers(-1_000, 1_000).filter(bool))
    def unbalanced(self, source, destination, amount, skew):
        credit = max(1, amount + skew)
        if credit == amount:
            credit += 1
        self.post([(source, "debit", amount), (destination, "credit", credit)])

    def post(self, entries):
        expected = self.predict(entries)
        txn, refused = self.outcome(lambda: ledger_transaction_post(
            tenant=self.tenant, entries=self.entry_inputs(entries), actor=SYSTEM))
        assert refused == expected, (entries, refused, expected)
        if txn is not None:
            self.apply(entries)
            self.transactions.append(ModelTransaction(id=txn.id, kind="transfer", entries=entries))
            self.record()

    @precondition(lambda self: self.transactions)
    @rule(pick=st.integers(0, 10_000))
    def reverse(self, pick):
        original = self.transactions[pick % len(self.transactions)]
        if original.kind == "reversal":
            expected = InvalidStateTransition
        elif original.reversed:
            expected = AlreadyReversed
        else:
            expected = self.predict(mirrored(original.entries))
        reversal, refused = self.outcome(lambda: ledger_transaction_reverse(
            tenant=self.tenant, transaction_id=original.id, actor=SYSTEM, reason="machine"))
        assert refused == expected, (original, refused, expected)
        if reversal is not None:
            assert reversal.reverses_id == original.id and reversal.kind == "reversal"
            original.reversed = True
            self.apply(mirrored(original.entries))
            self.transactions.append(ModelTransaction(id=reversal.id, kind="reversal",
                                                      entries=mirrored(original.entries)))
            self.record()

    @precondition(lambda self: not any(account.frozen for account in self.accounts.values()))
    @rule(name=st.sampled_from(ACCOUNT_NAMES))
    def freeze(self, name):
        """At most one account is frozen at a time, so that most postings still go through."""
        account = self.accounts[name]
        account_freeze(tenant=self.tenant, account_id=account.id, actor=Actor.system("machine"))
        account.frozen = True

    @precondition(lambda self: any(account.frozen for account in self.accounts.values()))
    @rule()
    def unfreeze(self):
        for account in self.accounts.values():
            if account.frozen:
                account_unfreeze(tenant=self.tenant, account_id=account.id, actor=Actor.system("machine"))
                account.frozen = False

    @rule(name=st.sampled_from(ACCOUNT_NAMES), pick=st.integers(0, 10_000))
    def read_balances(self, name, pick):
        account = self.accounts[name]
        now = self.client.get(f"/v1/accounts/{account.id}/balance")
        assert now.status_code == 200, now.content
        assert now.json()["posted"] == account.balance
        snapshot = self.snapshots[pick % len(self.snapshots)]
        then = self.client.get(f"/v1/accounts/{account.id}/balance", {"as_of": snapshot.at.isoformat()})
        assert then.status_code == 200, then.content
        assert then.json()["posted"] == snapshot.balances[name], (name, snapshot)

    # --- after every step -------------------------------------------------------------------------

    @invariant()
    def ledger_is_consistent(self):
        stored = assert_ledger_consistent(self.tenant)
        for name, account in self.accounts.items():
            assert stored[account.id] == account.balance, (name, stored[account.id], account.balance)


def test_random_histories_keep_every_invariant():
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=15, stateful_step_count=20, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
