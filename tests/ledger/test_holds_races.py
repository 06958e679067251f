"""Holds under real concurrency: parallel threads, each on its own PostgreSQL connection.

Each scenario starts its contenders at one barrier, so they reach the hold row and the account
rows at the same moment. Nothing is mocked: the row locks, SKIP LOCKED and the CHECK
constraints of the database decide. Afterwards the ledger is read back from the database:
balances, resolution transactions, events and the per-account hash chains.
"""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from audit.actors import Actor
from ledger.errors import AmountExceedsHold, HoldNotActive, InsufficientFunds
from ledger.models import Account, Hold, LedgerEntry, LedgerTransaction
from ledger.selectors import posted_balance
from ledger.services.accounts import account_create
from ledger.services.holds import hold_capture, hold_expire, hold_place, holds_expire_due
from tests.conftest import api_client
from webhooks.models import Event

from .checks import assert_ledger_consistent, customer_account, external_account, transfer

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.system("race-tests")
JOB = Actor.system("hold_expiry_job")
RESOLUTION_KINDS = ("capture", "release", "expiry")
_keys = iter(range(10**9))


# --- helpers ------------------------------------------------------------------------------------


def run_together(*calls, timeout: float = 60.0) -> list[tuple[str, object]]:
    """Run each call in its own thread, all released by one barrier; every thread opens its own
    database connection before the barrier (so the race is not decided by connecting) and closes
    it at the end. Returns ("ok", value) or ("error", exception) per call, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[str, object] | None] = [None] * len(calls)

    def worker(index, call):
        try:
            connection.ensure_connection()
            barrier.wait(timeout=20)
            results[index] = ("ok", call())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            results[index] = ("error", exc)
        finally:
            connection.close()
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a contender hung (deadlock or lock wait)"
    return results


def reserve_of(tenant, currency: str = "USD") -> Account:
    return Account.objects.get(tenant=tenant, currency=currency, account_type="reserve", is_system=True)


def posted(account) -> int:
    return posted_balance(Account.objects.get(pk=account if isinstance(account, str) else account.pk))


def resolutions(hold_id: str) -> list[LedgerTransaction]:
    return list(LedgerTransaction.objects.filter(hold_id=hold_id, kind__in=RESOLUTION_KINDS))


def errors_of(results) -> list[BaseException]:
    return [value for kind, value in results if kind == "error"]


def assert_only(results, allowed: tuple[type[BaseException], ...]) -> None:
    unexpected = [exc for exc in errors_of(results) if not isinstance(exc, allowed)]
    assert not unexpected, f"unexpected errors: {unexpected!r}"


def assert_no_account_went_negative(tenant) -> None:
    """Every running balance the ledger ever recorded on a no-overdraft account is >= 0."""
    negative = LedgerEntry.objects.filter(tenant=tenant, account__allow_overdraft=False, balance_after__lt=0)
    assert not negative.exists(), list(negative.values_list("account_id", "sequence", "balance_after"))


def verify_clean() -> None:
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)  # raises CommandError on any break
    assert "no breaks" in out.getvalue(), out.getvalue()


@pytest.fixture
def book(tenant_a):
    """Tenant A: a bank (external) account, a customer holding 10,000 and an empty merchant."""

    class Book:
        tenant = tenant_a.tenant
        bank = external_account(tenant_a.tenant)
        customer = customer_account(tenant_a.tenant)
        merchant = account_create(tenant=tenant_a.tenant, currency="USD", account_type="merchant", customer="mer_1",
                                  actor=ACTOR)
        reserve = reserve_of(tenant_a.tenant)

    transfer(Book.tenant, Book.bank, Book.customer, 10_000)
    return Book


def place(book, amount: int, *, seconds: float = 3600, account=None) -> Hold:
    return hold_place(tenant=book.tenant, account_id=(account or book.customer).id, amount=amount,
                      expires_at=timezone.now() + timedelta(seconds=seconds), actor=ACTOR)


def move_to(clock, instant) -> None:
    """Move the clock to the instant (time-machine; it keeps ticking from there)."""
    clock.past(instant, margin=timedelta(0))


# --- (a) twenty holds on funds for ten -----------------------------------------------------------


def test_twenty_parallel_holds_through_the_api_ten_win_ten_get_insufficient_funds(tenant_a, book):
    # given: 10,000 on the customer; twenty API clients, each with its own connection
    def attempt():
        client = api_client(tenant_a.raw_key)
        response = client.post("/v1/holds", {"account": book.customer.id, "amount": 1_000, "expires_in": 3600},
                               format="json", HTTP_IDEMPOTENCY_KEY=f"race-{next(_keys)}")
        return response.status_code, response.json()

    # when
    results = run_together(*[attempt for _ in range(20)])
    # then
    assert not errors_of(results), errors_of(results)
    answers = [value for _, value in results]
    created = [body for status, body in answers if status == 201]
    refused = [body for status, body in answers if status != 201]
    assert len(created) == 10, answers
    assert len(refused) == 10
    assert all(body["status"] == 422 and body["code"] == "insufficient_funds" for body in refused), refused
    assert all(body["status"] == "active" and body["amount"] == 1_000 for body in created)
    assert posted(book.customer) == 0
    assert posted(book.reserve) == 10_000
    assert Hold.objects.filter(account=book.customer).count() == 10
    assert LedgerTransaction.objects.filter(kind="hold").count() == 10
    assert Event.objects.filter(type="hold.created").count() == 10
    balance = tenant_a.get(f"/v1/accounts/{book.customer.id}/balance").json()
    assert (balance["posted"], balance["held"], balance["available"]) == (0, 10_000, 0)
    assert_no_account_went_negative(book.tenant)
    assert_ledger_consistent(book.tenant)
    verify_clean()


def test_twenty_parallel_holds_through_the_service_ten_win_ten_raise_insufficient_funds(book):
    # when
    results = run_together(*[lambda: place(book, 1_000) for _ in range(20)])
    # then
    assert_only(results, (InsufficientFunds,))
    assert sum(kind == "ok" for kind, _ in results) == 10
    assert sum(isinstance(exc, InsufficientFunds) for exc in errors_of(results)) == 10
    assert posted(book.customer) == 0 and posted(book.reserve) == 10_000
    assert_no_account_went_negative(book.tenant)
    assert_ledger_consistent(book.tenant)


# --- (b) capture, release and expiry of one hold at once -----------------------------------------


ROUNDS = 3


def race_three_ways(tenant_a, book, hold: Hold):
    """Capture (API), release (API) and the expiry of one hold (service), released together."""

    def capture():
        response = api_client(tenant_a.raw_key).post(
            f"/v1/holds/{hold.id}/capture", {"destination_account": book.merchant.id}, format="json",
            HTTP_IDEMPOTENCY_KEY=f"race-{next(_keys)}")
        return response.status_code, response.json()

    def release():
        response = api_client(tenant_a.raw_key).post(
            f"/v1/holds/{hold.id}/release", {"reason": "race"}, format="json",
            HTTP_IDEMPOTENCY_KEY=f"race-{next(_keys)}")
        return response.status_code, response.json()

    def expire():
        return hold_expire(hold_id=hold.id, actor=JOB)

    results = run_together(capture, release, expire)
    assert not errors_of(results), errors_of(results)
    (_, (capture_status, capture_body)), (_, (release_status, release_body)), (_, expired) = results
    for status, body in ((capture_status, capture_body), (release_status, release_body)):
        assert status in (200, 409), body
        if status == 409:
            assert body["code"] == "hold_not_active", body
    winners = [name for name, won in (("capture", capture_status == 200), ("release", release_status == 200),
                                      ("expiry", expired is not None)) if won]
    return winners


def assert_resolved_once(book, hold: Hold, winner: str) -> None:
    hold.refresh_from_db()
    expected_status = {"capture": "captured", "release": "released", "expiry": "expired"}[winner]
    assert hold.status == expected_status
    rows = resolutions(hold.id)
    assert [t.kind for t in rows] == [winner], [(t.kind, t.id) for t in rows]
    assert Event.objects.filter(resource_id=hold.id).exclude(type="hold.created").count() == 1
    assert Event.objects.get(resource_id=hold.id, type=f"hold.{expected_status}")
    assert hold.remaining == 0 and hold.captured_amount + hold.released_amount == hold.amount


def test_capture_release_and_expiry_of_an_unexpired_hold_at_once_exactly_one_wins(tenant_a, book):
    # given: holds far from their expiry; the expiry job must find nothing to do
    holds = [place(book, 1_000) for _ in range(ROUNDS)]
    for hold in holds:
        # when
        winners = race_three_ways(tenant_a, book, hold)
        # then
        assert len(winners) == 1 and winners[0] in ("capture", "release"), winners
        assert_resolved_once(book, hold, winners[0])
    captured = sum(Hold.objects.filter(pk__in=[h.id for h in holds]).values_list("captured_amount", flat=True))
    assert posted(book.merchant) == captured
    assert posted(book.customer) == 10_000 - captured
    assert posted(book.reserve) == 0
    assert_ledger_consistent(book.tenant)
    verify_clean()


def test_capture_release_and_expiry_of_a_lapsed_hold_at_once_only_expiry_resolves_it(tenant_a, book, clock):
    # given: holds already past expires_at, the expiry job not yet run
    holds = [place(book, 1_000, seconds=0.4) for _ in range(ROUNDS)]
    move_to(clock, max(h.expires_at for h in holds) + timedelta(milliseconds=20))
    for hold in holds:
        # when
        winners = race_three_ways(tenant_a, book, hold)
        # then: capture and release always lose (409); expiry wins unless SKIP LOCKED made it
        # step aside for a loser still holding the row, and then the next job run does it
        assert winners in (["expiry"], []), winners
    still_active = Hold.objects.filter(pk__in=[h.id for h in holds], status="active").count()
    assert holds_expire_due(actor=JOB) == still_active
    for hold in holds:
        assert_resolved_once(book, hold, "expiry")
    assert posted(book.customer) == 10_000 and posted(book.merchant) == 0 and posted(book.reserve) == 0
    assert_ledger_consistent(book.tenant)
    verify_clean()


def test_capture_release_and_expiry_at_the_moment_of_expiry_resolve_the_hold_once(tenant_a, book, clock):
    # given: each hold is raced for right at its expires_at, so either side of the instant may win
    results = []
    for _ in range(ROUNDS):
        hold = place(book, 1_000, seconds=0.3)
        move_to(clock, hold.expires_at - timedelta(milliseconds=3))
        # when
        winners = race_three_ways(tenant_a, book, hold)
        results.append((hold, winners))
    # then: never two winners; whatever no contender settled, the job settles exactly once
    assert all(len(winners) <= 1 for _, winners in results), results
    holds_expire_due(actor=JOB)
    for hold, winners in results:
        assert_resolved_once(book, hold, winners[0] if winners else "expiry")
    captured = sum(Hold.objects.filter(account=book.customer).values_list("captured_amount", flat=True))
    assert posted(book.merchant) == captured and posted(book.customer) == 10_000 - captured
    assert posted(book.reserve) == 0
    assert_ledger_consistent(book.tenant)


# --- (c) partial captures racing for what remains --------------------------------------------------


@pytest.mark.parametrize("second_amount", [400, 300], ids=["both-take-all-remaining", "one-takes-less"])
def test_two_partial_captures_racing_for_the_last_remaining_amount(book, second_amount):
    # given: a hold of 1,000 of which 600 is captured already, 400 remaining
    hold = place(book, 1_000)
    hold_capture(tenant=book.tenant, hold_id=hold.id, destination_account_id=book.merchant.id, amount=600,
                 final=False, actor=ACTOR)

    def capture(amount):
        return lambda: hold_capture(tenant=book.tenant, hold_id=hold.id, destination_account_id=book.merchant.id,
                                    amount=amount, final=False, actor=ACTOR)

    # when
    results = run_together(capture(400), capture(second_amount))
    # then
    assert_only(results, (AmountExceedsHold, HoldNotActive))
    assert sum(kind == "ok" for kind, _ in results) == 1, results
    hold.refresh_from_db()
    assert hold.captured_amount <= hold.amount
    captured_in_ledger = sum(LedgerEntry.objects.filter(transaction__hold=hold, transaction__kind="capture",
                                                        account=book.merchant).values_list("amount", flat=True))
    assert captured_in_ledger == hold.captured_amount == posted(book.merchant)
    assert hold.captured_amount in (1_000, 600 + second_amount)
    assert posted(book.reserve) == hold.remaining
    assert_ledger_consistent(book.tenant)


def test_many_partial_captures_never_capture_more_than_the_hold(book):
    # given: a hold of 1,000; eight contenders each want 300 of it
    hold = place(book, 1_000)
    # when
    results = run_together(*[
        lambda: hold_capture(tenant=book.tenant, hold_id=hold.id, destination_account_id=book.merchant.id,
                             amount=300, final=False, actor=ACTOR) for _ in range(8)])
    # then: three fit (900), the rest find only 100 left
    assert_only(results, (AmountExceedsHold,))
    assert sum(kind == "ok" for kind, _ in results) == 3
    hold.refresh_from_db()
    assert (hold.status, hold.captured_amount, hold.remaining) == ("active", 900, 100)
    assert LedgerTransaction.objects.filter(hold=hold, kind="capture").count() == 3
    assert posted(book.merchant) == 900 and posted(book.reserve) == 100
    assert Hold.history.filter(id=hold.id).count() == 4  # placed + three captures
    assert_ledger_consistent(book.tenant)


# --- (d) a late capture, then overlapping expiry jobs ---------------------------------------------


def test_capture_after_expiry_is_refused_and_overlapping_expiry_jobs_return_the_funds_once(tenant_a, book,
                                                                                                  clock):
    # given: the hold under test plus more due holds on other accounts, so the two job runs overlap
    accounts = []
    for index in range(4):
        accounts.append(account_create(tenant=book.tenant, currency="USD", account_type="customer",
                                       customer=f"cus_{index}", actor=ACTOR))
        transfer(book.tenant, book.bank, accounts[-1], 500)
    expires_at = timezone.now() + timedelta(seconds=1)
    created = tenant_a.post("/v1/holds", {"account": book.customer.id, "amount": 4_000,
                                          "expires_at": expires_at.isoformat()})
    assert created.status_code == 201, created.json()
    hold_id = created.json()["id"]
    others = [hold_place(tenant=book.tenant, account_id=account.id, amount=100, expires_at=expires_at, actor=ACTOR)
              for account in accounts for _ in range(3)]
    move_to(clock, expires_at + timedelta(milliseconds=20))
    before = (LedgerTransaction.objects.count(), Event.objects.count(), posted(book.customer), posted(book.merchant))

    # when: a capture arrives after expires_at, before any expiry job
    late = tenant_a.post(f"/v1/holds/{hold_id}/capture", {"destination_account": book.merchant.id})
    # then: refused, nothing written, and the funds already count as available
    assert late.status_code == 409 and late.json()["code"] == "hold_not_active", late.json()
    assert (LedgerTransaction.objects.count(), Event.objects.count(), posted(book.customer),
            posted(book.merchant)) == before
    balance = tenant_a.get(f"/v1/accounts/{book.customer.id}/balance").json()
    assert (balance["posted"], balance["held"], balance["available"]) == (6_000, 0, 10_000)

    # when: two expiry job runs overlap, beside a third worker whose list of due holds was read
    # before the others committed (it walks the list backwards, so it meets holds they finished)
    stale = list(Hold.objects.filter(status="active", expires_at__lte=timezone.now()).values_list("id", flat=True))
    assert len(stale) == 1 + len(others)

    def stale_worker():
        return sum(hold_expire(hold_id=due, actor=JOB) is not None for due in reversed(stale))

    results = run_together(lambda: holds_expire_due(actor=JOB, batch=5), lambda: holds_expire_due(actor=JOB, batch=5),
                           stale_worker)
    # then: every due hold expired once, by one of the runs
    assert not errors_of(results), errors_of(results)
    assert sum(value for _, value in results) == 1 + len(others)
    for hold in [hold_id, *(h.id for h in others)]:
        assert [t.kind for t in resolutions(hold)] == ["expiry"], hold
        assert Event.objects.filter(resource_id=hold, type="hold.expired").count() == 1
        assert Hold.objects.get(pk=hold).status == "expired"
    assert posted(book.customer) == 10_000
    assert posted(book.reserve) == 0
    balance = tenant_a.get(f"/v1/accounts/{book.customer.id}/balance").json()
    assert (balance["posted"], balance["held"], balance["available"]) == (10_000, 0, 10_000)
    assert holds_expire_due(actor=JOB) == 0
    assert_ledger_consistent(book.tenant)
    verify_clean()


def test_postings_needing_lapsed_funds_race_the_expiry_job_and_the_funds_return_once(book, clock):
    # given: 9,000 of 10,000 held by a hold that has just lapsed
    hold = place(book, 9_000, seconds=0.4)
    move_to(clock, hold.expires_at + timedelta(milliseconds=20))
    # when: a transfer and a new hold that need the lapsed funds, and the expiry job, all at once
    results = run_together(
        lambda: transfer(book.tenant, book.customer, book.merchant, 5_000),
        lambda: place(book, 4_500),
        lambda: holds_expire_due(actor=JOB),
    )
    # then: both postings succeed, the lapsed hold is expired exactly once by whichever came first
    assert not errors_of(results), errors_of(results)
    assert [t.kind for t in resolutions(hold.id)] == ["expiry"]
    assert Event.objects.filter(resource_id=hold.id, type="hold.expired").count() == 1
    hold.refresh_from_db()
    assert (hold.status, hold.released_amount) == ("expired", 9_000)
    assert posted(book.customer) == 500
    assert posted(book.merchant) == 5_000
    assert posted(book.reserve) == 4_500
    assert_no_account_went_negative(book.tenant)
    assert_ledger_consistent(book.tenant)
    verify_clean()
