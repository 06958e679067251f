"""Period close (docs/periods.md): the API's close, list, page and signed CSV; the refusal of
back-dated postings by the service (422 period_closed) and by the database (a trigger, for the
application role too); the order of a close and the postings in flight; the admin's list, page
and close for owners, refused to viewers."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import IntegrityError, connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessDenial, Approval
from ledger.errors import PeriodClosed
from ledger.models import Account, LedgerCheckpoint, LedgerEntry, LedgerPeriod, LedgerTransaction, new_transaction_id
from ledger.services.periods import ledger_period_close, period_signature_valid
from ledger.services.postings import EntryInput, post_entries
from ledger.services.transfers import ledger_transaction_reverse
from zentra.db.scope import tenant_scope

from ..conftest import as_app_role
from .checks import SYSTEM, customer_account, external_account, ledger_snapshot, new_tenant, transfer

pytestmark = pytest.mark.django_db
committing = pytest.mark.django_db(transaction=True)

PERIOD_FIELDS = {"id", "object", "closed_until", "trial_balance", "accounts", "checkpoint", "created_at"}


def iso(instant) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def transfer_body(source: str, destination: str, amount: int, **extra) -> dict:
    return {"entries": [{"account": source, "direction": "debit", "amount": amount},
                        {"account": destination, "direction": "credit", "amount": amount}], **extra}


@pytest.fixture
def book(tenant_a):
    """Tenant A: a USD bank and two customers, a EUR bank and customer. Before `until` (one hour
    ago): bank -> alice 10,000 and alice -> bob 2,500 (back-dated), EUR 700; after it (now):
    bank -> bob 400."""
    tenant = tenant_a.tenant
    now = timezone.now()

    class Book:
        until = now - timedelta(hours=1)
        bank = external_account(tenant)
        alice = customer_account(tenant)
        bob = customer_account(tenant)
        eur_bank = external_account(tenant, "EUR")
        eur_customer = customer_account(tenant, "EUR")

    transfer(tenant, Book.bank, Book.alice, 10_000, effective_at=now - timedelta(days=2))
    Book.middle = transfer(tenant, Book.alice, Book.bob, 2_500, effective_at=now - timedelta(days=1))
    transfer(tenant, Book.eur_bank, Book.eur_customer, 700, effective_at=now - timedelta(hours=3))
    transfer(tenant, Book.bank, Book.bob, 400)
    return Book


def close(tenant_a, until, **kwargs):
    return tenant_a.post("/v1/ledger_periods/close", {"until": iso(until)}, **kwargs)


# --- closing through the API ----------------------------------------------------------------------------


def test_a_close_answers_the_period_with_the_trial_balance_of_the_entries_before_until(tenant_a, book):
    # when
    response = close(tenant_a, book.until)
    # then: the shape of docs/api.md
    assert response.status_code == 201, response.content
    period = response.json()
    assert set(period) == PERIOD_FIELDS
    assert period["id"].startswith("per_") and period["object"] == "ledger_period"
    assert period["closed_until"] == iso(book.until)
    # the figures: the sums of the entries whose transaction is effective before until
    expected = {}
    for entry in LedgerEntry.objects.filter(tenant=tenant_a.tenant, transaction__effective_at__lt=book.until):
        line = expected.setdefault(entry.currency, {"currency": entry.currency, "debits": 0, "credits": 0})
        line["debits" if entry.direction == "debit" else "credits"] += entry.amount
    assert period["trial_balance"] == [expected["EUR"], expected["USD"]]
    assert period["trial_balance"] == [{"currency": "EUR", "debits": 700, "credits": 700},
                                       {"currency": "USD", "debits": 12_500, "credits": 12_500}]
    assert period["accounts"] == Account.rows.filter(tenant=tenant_a.tenant).count()  # per physical row
    checkpoint = LedgerCheckpoint.objects.get(pk=period["checkpoint"])
    assert checkpoint.reason == "period_close" and checkpoint.tenant_id == tenant_a.tenant.id
    # each account's closing line: its balance as of until (the 400 after it is not in it) and its head then
    stored = LedgerPeriod.objects.get(pk=period["id"])
    lines = {line.account_id: line for line in stored.balances.all()}
    assert (lines[book.alice.id].balance, lines[book.alice.id].sequence) == (7_500, 2)
    assert (lines[book.bob.id].balance, lines[book.bob.id].sequence) == (2_500, 1)
    assert lines[book.bob.id].hash == LedgerEntry.objects.get(account=book.bob, sequence=1).hash
    assert stored.closed_by.startswith("api_key:")
    assert period_signature_valid(stored)
    # listed newest first, and retrievable
    second = close(tenant_a, book.until + timedelta(minutes=30)).json()
    listed = tenant_a.get("/v1/ledger_periods")
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["data"]] == [second["id"], period["id"]]
    assert tenant_a.get(f"/v1/ledger_periods/{period['id']}").json() == period


def test_until_in_the_future_is_400_and_nothing_is_kept(tenant_a, book):
    response = close(tenant_a, timezone.now() + timedelta(minutes=5))
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error" and response.json()["errors"][0]["field"] == "until"
    assert not LedgerPeriod.objects.exists() and not LedgerCheckpoint.objects.exists()


@pytest.mark.parametrize("later", [timedelta(0), -timedelta(minutes=1)], ids=["same instant", "earlier"])
def test_until_not_after_the_last_close_is_409(tenant_a, book, later):
    # given
    assert close(tenant_a, book.until).status_code == 201
    # when
    response = close(tenant_a, book.until + later)
    # then
    assert response.status_code == 409 and response.json()["code"] == "invalid_state_transition"
    assert LedgerPeriod.objects.count() == 1 and LedgerCheckpoint.objects.count() == 1


def test_a_read_only_key_cannot_close(tenant_a, book):
    response = tenant_a.read_only_client().post("/v1/ledger_periods/close", {"until": iso(book.until)},
                                                format="json", HTTP_IDEMPOTENCY_KEY="ro-close")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert not LedgerPeriod.objects.exists()


def test_another_tenants_period_is_404_with_evidence(tenant_a, tenant_b, book):
    period = close(tenant_a, book.until).json()
    for path in (f"/v1/ledger_periods/{period['id']}", f"/v1/ledger_periods/{period['id']}/closing_balances.csv"):
        response = tenant_b.get(path)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert AccessDenial.objects.filter(target=period["id"]).count() == 2


# --- what a closed period refuses -----------------------------------------------------------------------


def test_a_back_dated_posting_is_refused_with_period_closed_and_nothing_is_written(tenant_a, book):
    # given
    assert close(tenant_a, book.until).status_code == 201
    before = ledger_snapshot()
    # when: effective a minute before the close
    response = tenant_a.post("/v1/transactions", transfer_body(
        book.bank.id, book.alice.id, 100, effective_at=iso(book.until - timedelta(minutes=1))))
    # then
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "period_closed"
    assert ledger_snapshot() == before
    # and at the instant of the close, or with no date (now), postings go through
    at_close = tenant_a.post("/v1/transactions", transfer_body(book.bank.id, book.alice.id, 100,
                                                               effective_at=iso(book.until)))
    assert at_close.status_code == 201, at_close.content
    assert tenant_a.post("/v1/transactions", transfer_body(book.bank.id, book.alice.id, 100)).status_code == 201


def test_reversals_and_other_postings_pass_at_now_and_are_refused_back_dated(tenant_a, book):
    # given
    tenant = tenant_a.tenant
    ledger_period_close(tenant=tenant, until=book.until, actor=SYSTEM)
    # when: the reversal of a transaction of the closed period is posted now, in the open period
    reversal = ledger_transaction_reverse(tenant=tenant, transaction_id=book.middle.id, actor=SYSTEM,
                                         reason="fix")
    # then
    assert reversal.effective_at >= book.until
    # but any posting kind given a date in the closed period is refused by post_entries
    before = ledger_snapshot()
    for kind in ("reversal", "capture", "settlement"):
        with pytest.raises(PeriodClosed), transaction.atomic():
            post_entries(tenant=tenant, kind=kind, actor=SYSTEM, effective_at=book.until - timedelta(seconds=1),
                         entries=[EntryInput(book.bank.id, "debit", 5), EntryInput(book.alice.id, "credit", 5)])
    assert ledger_snapshot() == before


def test_the_database_refuses_a_back_dated_insert_by_the_application_role(tenant_a, book):
    # given
    tenant_id = tenant_a.tenant.id
    ledger_period_close(tenant=tenant_a.tenant, until=book.until, actor=SYSTEM)
    before = LedgerTransaction.objects.count()

    def raw_insert(effective_at):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_ledgertransaction (id, tenant_id, kind, description, metadata, effective_at,"
                " created_at, source_request_id, actor) VALUES (%s, %s, 'transfer', 'raw', '{}'::jsonb, %s, now(),"
                " '', 'test:raw')", [new_transaction_id(), tenant_id, effective_at])
            cursor.execute("SELECT count(*) FROM ledger_ledgertransaction")
            seen = cursor.fetchone()[0]
            transaction.set_rollback(True)  # the control row has no entries: never let it reach a commit
        return seen

    # when: behind the ORM's back, as the application role, under row-level security
    with as_app_role(), tenant_scope([tenant_id]):
        with pytest.raises(IntegrityError, match="period closed") as refused:
            raw_insert(book.until - timedelta(microseconds=1))
        # control: the same statement effective at the close goes in (and is rolled back by the test)
        assert raw_insert(book.until) == before + 1
    # then
    assert refused.value.__cause__.diag.constraint_name == "txn_period_open"
    assert LedgerTransaction.objects.count() == before


def test_periods_are_append_only(tenant_a, book):
    period = ledger_period_close(tenant=tenant_a.tenant, until=book.until, actor=SYSTEM)
    for statement in ("UPDATE ledger_ledgerperiod SET closed_until = closed_until - interval '1 day'",
                      "DELETE FROM ledger_ledgerperiodbalance", "DELETE FROM ledger_ledgerperiod"):
        # as the schema owner: the trigger; as the application role: not even the privilege
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as c:
            c.execute(statement)
        with as_app_role(), tenant_scope([tenant_a.tenant.id]):
            with pytest.raises(Exception, match="permission denied"), transaction.atomic(), connection.cursor() as c:
                c.execute(statement)
    assert LedgerPeriod.objects.get().closed_until == period.closed_until


# --- the signed CSV -----------------------------------------------------------------------------------


def test_the_closing_balances_csv_lists_every_account_and_its_signature_verifies(tenant_a, book):
    # given
    period = close(tenant_a, book.until).json()
    # when
    response = tenant_a.get(f"/v1/ledger_periods/{period['id']}/closing_balances.csv")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = response.content
    lines = body.decode().splitlines()
    header = lines.index("account,currency,closing_balance,sequence,chain_hash")
    assert lines[0].startswith(f"# ledger_period={period['id']} tenant={tenant_a.tenant.id} "
                               f"closed_until={period['closed_until']}")
    assert "# trial_balance currency=USD debits=12500 credits=12500" in lines[:header]
    rows = {line.split(",")[0]: line.split(",") for line in lines[header + 1:-1]}
    assert set(rows) == set(Account.rows.filter(tenant=tenant_a.tenant).values_list("id", flat=True))
    assert rows[book.alice.id][1:4] == ["USD", "7500", "2"]
    assert rows[book.bob.id][1:4] == ["USD", "2500", "1"]
    assert rows[book.alice.id][4] == LedgerEntry.objects.get(account=book.alice, sequence=2).hash
    # the last line signs every byte before it, under a key GET /v1/signing_keys publishes
    signature_line = lines[-1]
    assert signature_line.startswith("# signature algorithm=Ed25519 kid=")
    fields = dict(part.split("=", 1) for part in signature_line.removeprefix("# signature ").split(" "))
    signed = body[: body.rindex(b"# signature ")]
    keys = {key["kid"]: key["public_key"] for key in tenant_a.get("/v1/signing_keys").json()["data"]}
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(keys[fields["kid"]]))
    public.verify(base64.b64decode(fields["value"]), signed)  # raises InvalidSignature otherwise
    # and a changed balance does not verify
    tampered = signed.replace(f"{book.alice.id},USD,7500,".encode(), f"{book.alice.id},USD,9500,".encode())
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(fields["value"]), tampered)


# --- the close and postings in flight ------------------------------------------------------------------


def run_in_thread(call):
    outcome: dict = {}

    def worker():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    return thread, outcome


def wait_for_lock_waiters(expected: int, timeout: float = 10.0) -> None:
    """Bounded polling of pg_locks until `expected` sessions wait for an advisory lock."""
    deadline = timezone.now() + timedelta(seconds=timeout)
    while timezone.now() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if cursor.fetchone()[0] >= expected:
                return
    raise AssertionError(f"no {expected} session(s) waiting for the period lock within {timeout}s")


@committing
def test_a_close_waits_for_a_back_dated_posting_in_flight_and_counts_it(monkeypatch):
    # given: a posting effective before `until` has written its rows and not yet committed
    tenant = new_tenant("race")
    bank, alice = external_account(tenant), customer_account(tenant)
    until = timezone.now() - timedelta(minutes=1)
    written, go_on = threading.Event(), threading.Event()
    import ledger.services.transfers as transfers

    original = transfers._transaction_event

    def paused(txn, type, actor):
        original(txn, type, actor)
        written.set()
        assert go_on.wait(20)

    monkeypatch.setattr(transfers, "_transaction_event", paused)
    posting, posted = run_in_thread(lambda: transfer(tenant, bank, alice, 900, effective_at=until - timedelta(hours=1)))
    assert written.wait(20)
    # when: the close starts, and must wait for it
    closing, closed = run_in_thread(lambda: ledger_period_close(tenant=tenant, until=until, actor=SYSTEM))
    wait_for_lock_waiters(1)
    go_on.set()
    posting.join(20)
    closing.join(20)
    # then: the posting committed, and the close's figures include it
    assert "error" not in posted and "error" not in closed, (posted, closed)
    assert closed["value"].trial_balance == [{"currency": "USD", "debits": 900, "credits": 900}]
    assert closed["value"].balances.get(account_id=alice.id).balance == 900


@committing
def test_a_back_dated_posting_that_arrives_during_a_close_is_refused_not_slipped_in(monkeypatch):
    # given: a close holds the period lock and has not committed yet
    tenant = new_tenant("race")
    bank, alice = external_account(tenant), customer_account(tenant)
    until = timezone.now() - timedelta(minutes=1)
    locked, go_on = threading.Event(), threading.Event()
    import ledger.services.periods as periods

    original = periods.checkpoint_take

    def paused(**kwargs):
        locked.set()
        assert go_on.wait(20)
        return original(**kwargs)

    monkeypatch.setattr(periods, "checkpoint_take", paused)
    closing, closed = run_in_thread(lambda: ledger_period_close(tenant=tenant, until=until, actor=SYSTEM))
    assert locked.wait(20)
    # when: a back-dated posting passes the service's check (nothing closed yet) and reaches the database
    posting, posted = run_in_thread(lambda: transfer(tenant, bank, alice, 900, effective_at=until - timedelta(hours=1)))
    wait_for_lock_waiters(1)
    go_on.set()
    closing.join(20)
    posting.join(20)
    # then: the close committed without it, and the posting was refused with the API's error, not a 500
    assert "error" not in closed, closed
    assert closed["value"].trial_balance == []
    assert isinstance(posted.get("error"), PeriodClosed), posted
    assert not LedgerTransaction.objects.filter(tenant=tenant).exists()


# --- the admin -------------------------------------------------------------------------------------------


def test_an_owner_sees_the_list_and_the_period_page_and_downloads_the_csv(client, tenant_a, book):
    # given
    period = ledger_period_close(tenant=tenant_a.tenant, until=book.until, actor=SYSTEM)
    client.force_login(tenant_a.member("owner"))
    # when
    listing = client.get(reverse("admin:ledger_ledgerperiod_changelist"))
    page = client.get(reverse("admin:ledger_ledgerperiod_change", args=[period.pk]))
    csv = client.get(reverse("admin:ledger_ledgerperiod_closing_balances", args=[period.pk]))
    # then
    assert listing.status_code == 200
    text = listing.content.decode()
    assert period.id in text and "125.00 USD Dr = 125.00 USD Cr" in text and period.checkpoint_id in text
    assert 'id="close-period-link"' in text
    assert page.status_code == 200
    assert 'id="trial-balance"' in page.content.decode() and "verifies" in page.content.decode()
    assert 'id="closing-balances-csv"' in page.content.decode()
    assert csv.status_code == 200 and csv.content.splitlines()[-1].startswith(b"# signature algorithm=Ed25519")


def test_an_owner_proposes_a_close_in_the_admin_and_a_second_person_approves_it(client, tenant_a, book):
    # given: the default rule, a close waits for a second person
    proposer, checker = tenant_a.member("owner"), tenant_a.member("operator")
    viewer = tenant_a.member("viewer")
    client.force_login(proposer)
    url = reverse("admin:ledger_ledgerperiod_close")
    until = book.until.strftime("%Y-%m-%d %H:%M:%S")
    assert client.get(url).status_code == 200
    # when: the owner closes
    response = client.post(url, {"tenant": tenant_a.tenant.pk, "until": until})
    # then: a proposal, nothing closed yet, and a second one for the same ledger is refused on the form
    approval = Approval.objects.get(action="period_close")
    assert response.status_code == 302 and response["Location"] == reverse("admin:audit_approval_change",
                                                                            args=[approval.pk])
    assert approval.status == "pending" and not LedgerPeriod.objects.exists()
    again = client.post(url, {"tenant": tenant_a.tenant.pk, "until": until})
    assert again.status_code == 200 and "already proposes" in again.content.decode()
    # when: the proposer, then a viewer, then an operator approve
    changelist = reverse("admin:audit_approval_changelist")
    decide = {"action": "approve", "_selected_action": [approval.pk], "confirm": "1", "reason": "month end"}
    own = client.post(changelist, decide, follow=True)
    assert "permission_denied" in own.content.decode()
    client.force_login(viewer)
    assert client.post(changelist, decide).status_code in (302, 403)
    approval.refresh_from_db()
    assert approval.status == "pending" and not LedgerPeriod.objects.exists()
    client.force_login(checker)
    client.post(changelist, decide)
    # then: closed, by the approval that names both people
    approval.refresh_from_db()
    period = LedgerPeriod.objects.get()
    assert approval.status == "approved" and approval.result == period.id
    assert period.closed_until == book.until.replace(microsecond=0) and period.closed_by == f"approval:{approval.pk}"
    assert approval.proposed_by == f"user:{proposer.pk}" and approval.decided_by == f"user:{checker.pk}"
    # and a second close at the same instant is shown on the form, not a 500
    client.force_login(proposer)
    again = client.post(url, {"tenant": tenant_a.tenant.pk, "until": until})
    assert again.status_code == 200 and "invalid_state_transition" in again.content.decode()
    assert LedgerPeriod.objects.count() == 1


def test_an_owner_closes_at_once_when_the_tenant_turned_the_rule_off(client, tenant_a, book):
    # given
    tenant_a.tenant.approval_period_close = False
    tenant_a.tenant.save(update_fields=["approval_period_close"])
    client.force_login(tenant_a.member("owner"))
    # when
    response = client.post(reverse("admin:ledger_ledgerperiod_close"),
                           {"tenant": tenant_a.tenant.pk, "until": book.until.strftime("%Y-%m-%d %H:%M:%S")})
    # then
    period = LedgerPeriod.objects.get()
    assert response["Location"] == reverse("admin:ledger_ledgerperiod_change", args=[period.pk])
    assert period.closed_by.startswith("user:") and not Approval.objects.exists()


def test_an_api_key_closes_at_once_unless_the_tenant_asks_keys_for_a_second_actor(tenant_a, book):
    # given
    tenant_a.tenant.approvals_for_api_keys = True
    tenant_a.tenant.save(update_fields=["approvals_for_api_keys"])
    # when
    proposed = tenant_a.post("/v1/ledger_periods/close", {"until": iso(book.until)})
    # then: 202 with the approval; a second key approves and the period is closed
    assert proposed.status_code == 202, proposed.content
    assert proposed.json()["object"] == "approval" and proposed.json()["action"] == "period_close"
    assert not LedgerPeriod.objects.exists()
    own = tenant_a.post(f"/v1/approvals/{proposed.json()['id']}/approve", {"reason": "mine"})
    assert own.status_code == 403 and own.json()["code"] == "permission_denied"
    decided = tenant_a.checker_client().post(f"/v1/approvals/{proposed.json()['id']}/approve",
                                             {"reason": "month end"}, format="json", HTTP_IDEMPOTENCY_KEY="ok")
    assert decided.status_code == 200, decided.content
    period = LedgerPeriod.objects.get()
    assert decided.json()["status"] == "approved" and decided.json()["result"] == period.id


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_a_viewer_or_operator_cannot_close_and_leaves_evidence(client, tenant_a, book, role):
    # given
    client.force_login(tenant_a.member(role))
    url = reverse("admin:ledger_ledgerperiod_close")
    # when
    shown = client.get(url)
    posted = client.post(url, {"tenant": tenant_a.tenant.pk, "until": book.until.strftime("%Y-%m-%d %H:%M:%S")})
    listing = client.get(reverse("admin:ledger_ledgerperiod_changelist"))
    # then
    assert shown.status_code == 403 and posted.status_code == 403
    assert not LedgerPeriod.objects.exists()
    assert AccessDenial.objects.filter(action="admin:close ledger.ledgerperiod").count() == 2
    assert listing.status_code == 200 and 'id="close-period-link"' not in listing.content.decode()
