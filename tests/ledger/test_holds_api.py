"""Holds through the API of docs/api.md ("Holds"): create, retrieve, list, capture, release, the
balances they leave, the events they write, and the expiry job (command and Celery task)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.actors import Actor
from ledger import tasks
from ledger.models import Account, Hold, LedgerTransaction, ReconciliationRun, logical_account_of
from ledger.selectors import posted_balance
from ledger.services.holds import hold_expire
from webhooks.models import Event

from .checks import assert_ledger_consistent

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(tenant_a, make_account):
    """Tenant A: a bank account, a customer holding 10,000, a second customer holding 2,000, a merchant."""

    class Book:
        bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
        customer = make_account(customer="alice")["id"]
        other = make_account(customer="bob")["id"]
        merchant = make_account(account_type="merchant", customer="mer_1")["id"]
        reserve = Account.objects.get(tenant=tenant_a.tenant, account_type="reserve", currency="USD").id

    for account, amount in ((Book.customer, 10_000), (Book.other, 2_000)):
        funded = tenant_a.post("/v1/transactions", {"entries": [
            {"account": Book.bank["id"], "direction": "debit", "amount": amount},
            {"account": account, "direction": "credit", "amount": amount}]})
        assert funded.status_code == 201, funded.json()
    return Book


def place(ctx, account: str, amount: int, **fields) -> dict:
    body = {"account": account, "amount": amount, **({"expires_in": 3600} if "expires_at" not in fields else {}),
            **fields}
    response = ctx.post("/v1/holds", body)
    assert response.status_code == 201, response.json()
    return response.json()


def place_lapsing(ctx, account: str, amount: int, *, ms: int = 400) -> dict:
    """A hold that expires `ms` milliseconds from now (expires_at, so under a second)."""
    return place(ctx, account, amount, expires_at=(timezone.now() + timedelta(milliseconds=ms)).isoformat())


def move_past(clock, *holds: dict) -> None:
    """Move the clock just past the holds' expiry (time-machine; no waiting)."""
    clock.past(max(datetime.fromisoformat(h["expires_at"]) for h in holds))


def capture(ctx, hold_id: str, destination: str, **fields):
    response = ctx.post(f"/v1/holds/{hold_id}/capture", {"destination_account": destination, **fields})
    assert response.status_code == 200, response.json()
    return response.json()


def release(ctx, hold_id: str, reason: str = "customer canceled"):
    response = ctx.post(f"/v1/holds/{hold_id}/release", {"reason": reason})
    assert response.status_code == 200, response.json()
    return response.json()


def balances(ctx, account: str) -> tuple[int, int, int]:
    """(posted, held, available), from the balance endpoint and the account body, which must agree."""
    balance = ctx.get(f"/v1/accounts/{account}/balance").json()
    embedded = ctx.get(f"/v1/accounts/{account}").json()["balances"]
    triple = (balance["posted"], balance["held"], balance["available"])
    assert triple == (embedded["posted"], embedded["held"], embedded["available"])
    return triple


def ids(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {hold["id"] for hold in response.json()["data"]}


def verify_clean(tenant) -> None:
    """verify_ledger sets its own isolation level, so it runs only in transactional tests."""
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)  # CommandError on any break
    assert "no breaks" in out.getvalue(), out.getvalue()
    assert ReconciliationRun.objects.filter(tenant=tenant).latest("started_at").status == "ok"
    assert_ledger_consistent(tenant)


def entries_of(txn_id: str) -> set[tuple[str, str, int]]:
    """By logical account: a hot account's entry lands on one of its shard rows."""
    return {(logical_account_of(row)[0], direction, amount) for row, direction, amount
            in LedgerTransaction.objects.get(pk=txn_id).entries.values_list("account_id", "direction", "amount")}


# --- create and retrieve ----------------------------------------------------------------------------


def test_create_with_expires_in_reserves_the_amount_on_the_reserve_account(tenant_a, book):
    # given
    before = timezone.now()
    # when
    response = tenant_a.post("/v1/holds", {"account": book.customer, "amount": 4_000, "expires_in": 600,
                                           "reference": "order-17", "metadata": {"order": 17}})
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("hold_") and body["object"] == "hold"
    assert (body["account"], body["amount"], body["currency"]) == (book.customer, 4_000, "USD")
    assert (body["captured_amount"], body["released_amount"], body["status"]) == (0, 0, "active")
    assert (body["reference"], body["metadata"]) == ("order-17", {"order": 17})
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(seconds=600) <= expires_at <= timezone.now() + timedelta(seconds=600)
    assert body["source_request_id"] == response["X-Request-Id"]
    assert body["transactions"]["captures"] == [] and body["transactions"]["release"] is None
    assert (body["resolved_by"], body["resolution_reason"], body["resolved_at"]) == (None, None, None)
    created = LedgerTransaction.objects.get(pk=body["transactions"]["created"])
    assert (created.kind, created.hold_id) == ("hold", body["id"])
    assert entries_of(created.id) == {(book.customer, "debit", 4_000), (book.reserve, "credit", 4_000)}
    assert posted_balance(Account.objects.get(pk=book.reserve)) == 4_000
    hold = Hold.objects.get(pk=body["id"])
    # the hold keeps the reserve row it credited: a shard of the reserve account, picked by its id
    assert logical_account_of(hold.reserve_account_id)[0] == book.reserve and hold.created_by.startswith("api_key:")


def test_create_with_expires_at_keeps_that_instant_and_retrieve_answers_the_same_body(tenant_a, book):
    # given
    expires_at = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    # when
    response = tenant_a.post("/v1/holds", {"account": book.customer, "amount": 2_500,
                                           "expires_at": expires_at.isoformat()})
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert datetime.fromisoformat(body["expires_at"]) == expires_at
    assert Hold.objects.get(pk=body["id"]).expires_at == expires_at
    retrieved = tenant_a.get(f"/v1/holds/{body['id']}")
    assert retrieved.status_code == 200
    assert retrieved.json() == body


def test_retrieve_of_an_unknown_hold_is_404(tenant_a, book):
    response = tenant_a.get("/v1/holds/hold_doesnotexist")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


# --- list ---------------------------------------------------------------------------------------


def test_list_filters_by_account_and_by_the_status_a_client_sees(tenant_a, book, clock):
    # given: one hold in each state, and an active hold whose expiry passed before any job ran
    lapsed = place_lapsing(tenant_a, book.customer, 100)
    expired = place_lapsing(tenant_a, book.customer, 200)
    active = place(tenant_a, book.customer, 300)
    captured = place(tenant_a, book.customer, 400)
    capture(tenant_a, captured["id"], book.merchant)
    released = place(tenant_a, book.customer, 500)
    release(tenant_a, released["id"])
    on_other = place(tenant_a, book.other, 600)
    move_past(clock, lapsed, expired)
    assert hold_expire(hold_id=expired["id"], actor=Actor.system("tests")) is not None
    assert Hold.objects.get(pk=expired["id"]).status == "expired"
    assert Hold.objects.get(pk=lapsed["id"]).status == "active"  # stored status: the job has not run
    # when / then
    everything = {lapsed["id"], expired["id"], active["id"], captured["id"], released["id"], on_other["id"]}
    assert ids(tenant_a.get("/v1/holds")) == everything
    assert ids(tenant_a.get("/v1/holds", account=book.other)) == {on_other["id"]}
    assert ids(tenant_a.get("/v1/holds", account=book.customer)) == everything - {on_other["id"]}
    assert ids(tenant_a.get("/v1/holds", status="active")) == {active["id"], on_other["id"]}
    assert ids(tenant_a.get("/v1/holds", status="expired")) == {lapsed["id"], expired["id"]}
    assert ids(tenant_a.get("/v1/holds", status="captured")) == {captured["id"]}
    assert ids(tenant_a.get("/v1/holds", status="released")) == {released["id"]}
    assert ids(tenant_a.get("/v1/holds", account=book.customer, status="active")) == {active["id"]}
    listed = {h["id"]: h for h in tenant_a.get("/v1/holds").json()["data"]}
    assert listed[lapsed["id"]]["status"] == "expired"
    assert tenant_a.get(f"/v1/holds/{lapsed['id']}").json()["status"] == "expired"
    # newest first
    assert [h["id"] for h in tenant_a.get("/v1/holds").json()["data"]] == sorted(everything, reverse=True)
    bad = tenant_a.get("/v1/holds", status="pending")
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"


def test_list_is_scoped_to_the_tenant(tenant_a, tenant_b, book):
    # given
    hold = place(tenant_a, book.customer, 100)
    # when / then
    assert ids(tenant_b.get("/v1/holds")) == set()
    foreign = tenant_b.get("/v1/holds", account=book.customer)
    assert foreign.status_code == 404
    assert ids(tenant_a.get("/v1/holds")) == {hold["id"]}


# --- balances through the life of holds -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_balances_before_and_after_place_partial_capture_final_capture_and_release(tenant_a, book, clock):
    # given
    assert balances(tenant_a, book.customer) == (10_000, 0, 10_000)
    # when: place 4,000
    hold = place(tenant_a, book.customer, 4_000)
    # then: the funds left for the reserve
    assert balances(tenant_a, book.customer) == (6_000, 4_000, 6_000)
    assert balances(tenant_a, book.reserve) == (4_000, 0, 4_000)
    # when: partial capture 1,500
    partial = capture(tenant_a, hold["id"], book.merchant, amount=1_500, final=False)
    assert (partial["status"], partial["captured_amount"], partial["released_amount"]) == ("active", 1_500, 0)
    assert balances(tenant_a, book.customer) == (6_000, 2_500, 6_000)
    assert balances(tenant_a, book.merchant) == (1_500, 0, 1_500)
    assert balances(tenant_a, book.reserve) == (2_500, 0, 2_500)
    # when: final capture 500, the other 2,000 goes back
    final = capture(tenant_a, hold["id"], book.merchant, amount=500, final=True)
    assert (final["status"], final["captured_amount"], final["released_amount"]) == ("captured", 2_000, 2_000)
    assert balances(tenant_a, book.customer) == (8_000, 0, 8_000)
    assert balances(tenant_a, book.merchant) == (2_000, 0, 2_000)
    assert balances(tenant_a, book.reserve) == (0, 0, 0)
    # when: another hold, released
    second = place(tenant_a, book.customer, 3_000)
    assert balances(tenant_a, book.customer) == (5_000, 3_000, 5_000)
    released = release(tenant_a, second["id"], reason="order canceled")
    assert (released["status"], released["released_amount"], released["resolution_reason"]) == (
        "released", 3_000, "order canceled")
    assert released["resolved_by"].startswith("api_key:") and released["resolved_at"]
    assert entries_of(released["transactions"]["release"]) == {(book.reserve, "debit", 3_000),
                                                               (book.customer, "credit", 3_000)}
    assert balances(tenant_a, book.customer) == (8_000, 0, 8_000)
    # when: a hold lapses: available at once, posted only once the job runs
    lapsing = place_lapsing(tenant_a, book.customer, 1_000)
    assert balances(tenant_a, book.customer) == (7_000, 1_000, 7_000)
    move_past(clock, lapsing)
    assert balances(tenant_a, book.customer) == (7_000, 0, 8_000)
    call_command("expire_holds", stdout=io.StringIO())
    assert balances(tenant_a, book.customer) == (8_000, 0, 8_000)
    verify_clean(tenant_a.tenant)


def test_capture_without_an_amount_captures_what_remains(tenant_a, book):
    # given: 1,000 held, 350 already captured
    hold = place(tenant_a, book.customer, 1_000)
    capture(tenant_a, hold["id"], book.merchant, amount=350, final=False)
    # when
    body = capture(tenant_a, hold["id"], book.merchant)
    # then
    assert (body["status"], body["captured_amount"], body["released_amount"]) == ("captured", 1_000, 0)
    assert len(body["transactions"]["captures"]) == 2 and body["transactions"]["release"] is None
    assert entries_of(body["transactions"]["captures"][-1]) == {(book.reserve, "debit", 650),
                                                                (book.merchant, "credit", 650)}
    assert balances(tenant_a, book.merchant) == (1_000, 0, 1_000)
    assert balances(tenant_a, book.customer) == (9_000, 0, 9_000)
    assert_ledger_consistent(tenant_a.tenant)


def test_final_capture_releases_the_remainder_to_the_source(tenant_a, book):
    # given
    hold = place(tenant_a, book.customer, 1_000)
    # when: final is the default
    body = capture(tenant_a, hold["id"], book.merchant, amount=300)
    # then
    assert (body["status"], body["captured_amount"], body["released_amount"]) == ("captured", 300, 700)
    [capture_txn] = body["transactions"]["captures"]
    assert entries_of(capture_txn) == {(book.reserve, "debit", 300), (book.merchant, "credit", 300)}
    remainder = LedgerTransaction.objects.get(pk=body["transactions"]["release"])
    assert (remainder.kind, remainder.hold_id) == ("release", hold["id"])
    assert entries_of(remainder.id) == {(book.reserve, "debit", 700), (book.customer, "credit", 700)}
    assert balances(tenant_a, book.customer) == (9_700, 0, 9_700)
    assert balances(tenant_a, book.reserve) == (0, 0, 0)
    assert_ledger_consistent(tenant_a.tenant)


# --- events -------------------------------------------------------------------------------------


def test_each_change_emits_its_event_with_the_api_body(tenant_a, book, clock):
    # given / when: created, captured (partial), released; a second hold expired by the job
    created = tenant_a.post("/v1/holds", {"account": book.customer, "amount": 1_000, "expires_in": 3600,
                                          "reference": "r-1", "metadata": {"k": "v"}})
    hold = created.json()
    captured = tenant_a.post(f"/v1/holds/{hold['id']}/capture", {"destination_account": book.merchant,
                                                                 "amount": 400, "final": False})
    released = tenant_a.post(f"/v1/holds/{hold['id']}/release", {"reason": "done"})
    lapsing = place_lapsing(tenant_a, book.customer, 700)
    move_past(clock, lapsing)
    call_command("expire_holds", stdout=io.StringIO())
    # then
    events = {e.type: e for e in Event.objects.filter(resource_id=hold["id"])}
    assert sorted(events) == ["hold.captured", "hold.created", "hold.released"]
    for type, response in (("hold.created", created), ("hold.captured", captured), ("hold.released", released)):
        assert events[type].data == {"object": response.json()}, type
        assert events[type].tenant_id == tenant_a.tenant.id
        assert events[type].request_id == response["X-Request-Id"]
        assert events[type].actor.startswith("api_key:")
    assert Event.objects.filter(resource_id=lapsing["id"], type="hold.created").count() == 1
    expired_event = Event.objects.get(resource_id=lapsing["id"], type="hold.expired")
    assert expired_event.data == {"object": tenant_a.get(f"/v1/holds/{lapsing['id']}").json()}
    assert expired_event.data["object"]["status"] == "expired"
    assert expired_event.actor == "system:expire_holds"


# --- the expiry job -----------------------------------------------------------------------------


def assert_expired_by(hold_id: str, actor: str, amount: int) -> None:
    hold = Hold.objects.get(pk=hold_id)
    assert (hold.status, hold.released_amount, hold.captured_amount) == ("expired", amount, 0)
    assert hold.resolved_by == actor and hold.resolved_at is not None
    [txn] = LedgerTransaction.objects.filter(hold=hold, kind__in=["capture", "release", "expiry"])
    assert txn.kind == "expiry" and txn.actor == actor
    assert entries_of(txn.id) == {(logical_account_of(hold.reserve_account_id)[0], "debit", amount),
                                  (hold.account_id, "credit", amount)}
    assert Event.objects.filter(resource_id=hold_id, type="hold.expired").count() == 1
    latest = hold.history.first()
    assert latest.status == "expired" and latest.history_actor == actor


@pytest.mark.django_db(transaction=True)
def test_expire_holds_command_expires_due_holds_once(tenant_a, book, clock):
    # given: two due holds on two accounts and one that is not due
    due = [place_lapsing(tenant_a, book.customer, 1_200), place_lapsing(tenant_a, book.other, 800)]
    later = place(tenant_a, book.customer, 500)
    move_past(clock, *due)
    # when
    first, second = io.StringIO(), io.StringIO()
    call_command("expire_holds", stdout=first)
    call_command("expire_holds", stdout=second)
    # then
    assert "expired 2 hold(s)" in first.getvalue()
    assert "expired 0 hold(s)" in second.getvalue()
    assert_expired_by(due[0]["id"], "system:expire_holds", 1_200)
    assert_expired_by(due[1]["id"], "system:expire_holds", 800)
    assert Hold.objects.get(pk=later["id"]).status == "active"
    assert balances(tenant_a, book.customer) == (9_500, 500, 9_500)
    # and expiring one by one finds nothing to do: already expired, captured, or not yet due
    captured = place(tenant_a, book.other, 300)
    capture(tenant_a, captured["id"], book.merchant)
    written = LedgerTransaction.objects.count(), Event.objects.count(), Hold.history.count()
    for hold_id in (due[0]["id"], captured["id"], later["id"]):
        assert hold_expire(hold_id=hold_id, actor=Actor.system("expire_holds")) is None, hold_id
    assert (LedgerTransaction.objects.count(), Event.objects.count(), Hold.history.count()) == written
    assert balances(tenant_a, book.other) == (2_000 - 300, 0, 2_000 - 300)
    assert LedgerTransaction.objects.filter(kind="expiry").count() == 2
    verify_clean(tenant_a.tenant)


def test_celery_task_expires_due_holds_once(tenant_a, book, clock):
    # given
    due = place_lapsing(tenant_a, book.customer, 3_000)
    captured_then_due = place_lapsing(tenant_a, book.other, 1_000)
    capture(tenant_a, captured_then_due["id"], book.merchant, amount=250, final=False)
    move_past(clock, due, captured_then_due)
    # when: the task function called as the beat schedule would, in-process
    assert tasks.holds_expire_due() == 2
    assert tasks.holds_expire_due() == 0
    # then
    assert_expired_by(due["id"], "system:hold_expiry_job", 3_000)
    partly = Hold.objects.get(pk=captured_then_due["id"])
    assert (partly.status, partly.captured_amount, partly.released_amount) == ("expired", 250, 750)
    assert LedgerTransaction.objects.get(hold=partly, kind="expiry").actor == "system:hold_expiry_job"
    assert balances(tenant_a, book.customer) == (10_000, 0, 10_000)
    assert balances(tenant_a, book.other) == (1_750, 0, 1_750)
    assert balances(tenant_a, book.merchant) == (250, 0, 250)
    assert balances(tenant_a, book.reserve) == (0, 0, 0)
    assert_ledger_consistent(tenant_a.tenant)


# --- history ------------------------------------------------------------------------------------


def test_every_hold_change_has_a_history_row(tenant_a, book):
    # given / when
    hold = place(tenant_a, book.customer, 1_000)
    capture(tenant_a, hold["id"], book.merchant, amount=100, final=False, reason="first shipment")
    capture(tenant_a, hold["id"], book.merchant, amount=200, final=True)
    released = place(tenant_a, book.customer, 50)
    release(tenant_a, released["id"], reason="changed mind")
    # then
    rows = list(Hold.history.filter(id=hold["id"]).order_by("history_date", "history_id"))
    assert [(r.history_type, r.status, r.captured_amount, r.released_amount) for r in rows] == [
        ("+", "active", 0, 0), ("~", "active", 100, 0), ("~", "captured", 300, 700)]
    assert rows[1].history_change_reason == "first shipment"
    assert all(r.history_actor.startswith("api_key:") for r in rows)
    released_rows = list(Hold.history.filter(id=released["id"]).order_by("history_date", "history_id"))
    assert [(r.history_type, r.status) for r in released_rows] == [("+", "active"), ("~", "released")]
    assert released_rows[-1].history_change_reason == "changed mind"
    assert released_rows[-1].resolution_reason == "changed mind"
    assert_ledger_consistent(tenant_a.tenant)


# --- expiry next to other account states ------------------------------------------------------------


def test_balance_as_of_now_agrees_with_the_live_balance_while_a_hold_is_lapsed(tenant_a, book, clock):
    # given: 9,000 of the customer's 10,000 held by a hold that has lapsed; no job has run
    lapsing = place_lapsing(tenant_a, book.customer, 9_000)
    move_past(clock, lapsing)
    # when: the balance now, and as of this very instant
    live = tenant_a.get(f"/v1/accounts/{book.customer}/balance").json()
    as_of = tenant_a.get(f"/v1/accounts/{book.customer}/balance", as_of=timezone.now().isoformat()).json()
    # then: docs/api.md's available counts lapsed holds, whichever way the balance is asked for
    assert (live["posted"], live["held"], live["available"]) == (1_000, 0, 10_000)
    assert (as_of["posted"], as_of["held"], as_of["available"]) == (1_000, 0, 10_000)


def test_expiry_job_keeps_going_past_a_hold_it_cannot_expire(tenant_a, book, clock):
    # given: two lapsed holds; the account of the first one was frozen while its hold was active
    blocked = place_lapsing(tenant_a, book.customer, 1_000, ms=300)
    healthy = place_lapsing(tenant_a, book.other, 500, ms=400)
    assert tenant_a.post(f"/v1/accounts/{book.customer}/freeze", {"reason": "investigation"}).status_code == 200
    move_past(clock, blocked, healthy)
    # when: the job runs (twice, as beat would)
    failures = []
    for _ in range(2):
        try:
            call_command("expire_holds", stdout=io.StringIO())
        except Exception as exc:  # noqa: BLE001 - the job's failure is reported below
            failures.append(exc)
    # then: one hold the job cannot settle must not keep every other due hold from expiring
    assert Hold.objects.get(pk=healthy["id"]).status == "expired", failures
    assert balances(tenant_a, book.other) == (2_000, 0, 2_000)


@pytest.mark.django_db(transaction=True)
def test_the_reserve_account_cannot_be_used_to_break_the_reserve_invariant(tenant_a, book):
    """Whatever a client asks of holds, the reserve keeps exactly what active holds reserve
    (verify_ledger's reserve check): the reserve is no account to hold, nor to capture into."""
    # given: 4,000 of the customer's held
    customer_hold = place(tenant_a, book.customer, 4_000)
    second = place(tenant_a, book.other, 1_000)
    # when: a hold on the reserve itself, captured to the merchant; a capture into the reserve
    on_reserve = tenant_a.post("/v1/holds", {"account": book.reserve, "amount": 4_000, "expires_in": 60})
    if on_reserve.status_code == 201:
        tenant_a.post(f"/v1/holds/{on_reserve.json()['id']}/capture", {"destination_account": book.merchant})
    tenant_a.post(f"/v1/holds/{second['id']}/capture", {"destination_account": book.reserve})
    # then: the customer's reserved funds are still there for the customer's hold
    assert posted_balance(Account.objects.get(pk=book.reserve)) == sum(
        h.remaining for h in Hold.objects.filter(status="active"))
    assert Hold.objects.get(pk=customer_hold["id"]).status == "active"
    verify_clean(tenant_a.tenant)


@pytest.mark.django_db(transaction=True)  # as in production: no test transaction, so no savepoints
def test_a_hold_capture_request_runs_at_most_ten_statements(tenant_a, book):
    """Each row is loaded and locked once: the key's tenant (the row-level security lookup) and
    the key, the idempotency claim, the hold (with its transaction ids), the accounts together,
    one posting statement, the hold and its history row, the event, the stored answer. Counted
    around the whole request; transaction control (each statement outside a service runs in a
    short transaction that sets the tenant context: docs/security.md) and the test's own switch
    to the application role are not the request's statements."""
    # given: an active hold (and an API key last used just now, so no refresh of last_used_at)
    hold = place(tenant_a, book.customer, 2_500)
    # when
    with CaptureQueriesContext(connections["default"]) as statements:
        captured = capture(tenant_a, hold["id"], book.merchant)
    # then
    assert captured["status"] == "captured" and captured["captured_amount"] == 2_500
    assert len(captured["transactions"]["captures"]) == 1
    ran = [q["sql"] for q in statements.captured_queries
           if not q["sql"].startswith(("BEGIN", "COMMIT", "SET ROLE", "RESET ROLE"))]
    assert len(ran) <= 10, "\n".join(sql[:160] for sql in ran)
