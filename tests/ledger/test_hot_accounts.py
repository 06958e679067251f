"""Hot accounts (ARCHITECTURE.md, Hot accounts; issue 14): one logical account over N rows, each
with its own lock, sequence and chain. The API and the admin show one account with the summed
balance; credits land on the shard their hold (intent, payout) picks, so later steps meet it;
debits that need the whole balance split over the shards, each within its floor."""

from __future__ import annotations

import importlib
from collections import Counter
from io import StringIO
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from audit.actors import Actor
from ledger.models import Account, Hold, LedgerEntry, LedgerTransaction, logical_account_of, shard_row_id
from ledger.selectors import account_row_ids, posted_balance
from ledger.services.accounts import account_freeze
from ledger.services.holds import hold_place, hold_release
from ledger.services.postings import EntryInput
from ledger.services.reconciliation import ledger_verify
from ledger.services.shards import account_shards_set
from ledger.services.transfers import ledger_transaction_post, ledger_transaction_reverse
from zentra.errors import ValidationFailed

from .checks import assert_ledger_consistent, ledger_snapshot
from .test_refusals import assert_problem, transfer_body

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test")


def reserve_of(ctx, currency: str = "USD") -> Account:
    return Account.objects.get(tenant=ctx.tenant, currency=currency, account_type="reserve", is_system=True)


def funded(ctx, make_account, amount: int, currency: str = "USD") -> tuple[dict, dict]:
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True, currency=currency)
    customer = make_account(currency=currency)
    assert ctx.post("/v1/transactions", transfer_body(bank, customer, amount)).status_code == 201
    return bank, customer


def test_system_accounts_open_spread_over_their_shards_and_show_as_one(tenant_a, make_account, settings):
    make_account()
    reserve = reserve_of(tenant_a)
    # the logical row and its shards, each "<id>.s<k>", every one carrying the count
    rows = list(Account.rows.filter(pk__in=account_row_ids(reserve)).order_by("shard"))
    assert [row.shard for row in rows] == list(range(settings.ZENTRA_SYSTEM_ACCOUNT_SHARDS))
    assert all(row.id == shard_row_id(reserve.id, row.shard) and row.shard_count == len(rows) for row in rows)
    assert all(row.is_system and row.account_type == "reserve" for row in rows)
    # the API lists one reserve account, with its shard count; a shard row is not an account to it
    listed = tenant_a.get("/v1/accounts?account_type=reserve").json()["data"]
    assert [(a["id"], a["shards"]) for a in listed] == [(reserve.id, len(rows))]
    assert_problem(tenant_a.get(f"/v1/accounts/{rows[1].id}"), 404, "not_found")


def test_holds_spread_over_the_reserve_shards_and_each_resolution_meets_its_own(tenant_a, make_account):
    _, customer = funded(tenant_a, make_account, 100_000)
    reserve = reserve_of(tenant_a)
    holds = [hold_place(tenant=tenant_a.tenant, account_id=customer["id"], amount=100 + i, expires_in=600, actor=ACTOR)
             for i in range(24)]
    used = Counter(hold.reserve_account_id for hold in holds)
    assert len(used) > 1, "24 holds all landed on one reserve row"
    assert {logical_account_of(row_id)[0] for row_id in used} == {reserve.id}
    # each shard holds exactly what its holds reserve, and the account shows the sum
    for row_id, _ in used.items():
        reserved = sum(h.amount for h in holds if h.reserve_account_id == row_id)
        assert Account.rows.get(pk=row_id).posted_balance == reserved
    body = tenant_a.get(f"/v1/accounts/{reserve.id}").json()
    assert body["balances"]["posted"] == sum(h.amount for h in holds) == posted_balance(reserve)
    # a release takes the money back out of the row its hold credited
    for hold in holds[:12]:
        hold_release(tenant=tenant_a.tenant, hold_id=hold.id, actor=ACTOR)
        [release] = LedgerTransaction.objects.filter(hold=hold, kind="release")
        debit = release.entries.get(direction="debit")
        assert debit.account_id == hold.reserve_account_id
    assert posted_balance(reserve) == sum(h.amount for h in holds[12:])
    run = ledger_verify(tenant=tenant_a.tenant, actor=ACTOR)
    assert (run.status, run.breaks_count) == ("ok", 0), list(run.breaks.values_list("kind", "detail"))
    assert_ledger_consistent(tenant_a.tenant)


def test_a_debit_larger_than_one_shard_splits_over_the_shards_within_their_floors(tenant_a, make_account):
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    merchant = make_account(account_type="merchant", customer="m_1")
    account_shards_set(tenant=tenant_a.tenant, account_id=merchant["id"], shards=4, actor=ACTOR, reason="hot")
    # credits land on the shards their keys pick (each posting's own id here)
    for _ in range(12):
        assert tenant_a.post("/v1/transactions", transfer_body(bank, merchant, 1_000)).status_code == 201
    rows = {row.id: row.posted_balance for row in Account.rows.filter(pk__in=account_row_ids(
        Account.objects.get(pk=merchant["id"])))}
    assert sum(rows.values()) == 12_000 and sum(1 for balance in rows.values() if balance) > 1
    largest = max(rows.values())
    # when: a debit of more than any one shard holds
    response = tenant_a.post("/v1/transactions", transfer_body(merchant, bank, largest + 500))
    # then: one entry per shard it draws from, each naming the account and its shard, none overdrawn
    assert response.status_code == 201, response.json()
    debits = [e for e in response.json()["entries"] if e["direction"] == "debit"]
    assert len(debits) >= 2 and sum(e["amount"] for e in debits) == largest + 500
    assert all(e["account"] == merchant["id"] for e in debits)
    assert len({e["shard"] for e in debits}) == len(debits)
    assert all(row.posted_balance >= 0 for row in Account.rows.filter(shard_of=merchant["id"]))
    balance = tenant_a.get(f"/v1/accounts/{merchant['id']}/balance").json()
    assert balance["posted"] == 12_000 - largest - 500
    # and its reversal credits the very rows it debited
    reversal = ledger_transaction_reverse(tenant=tenant_a.tenant, transaction_id=response.json()["id"], actor=ACTOR)
    back = Counter((e.account_id, e.amount) for e in reversal.entries.filter(direction="credit"))
    original = Counter((e.account_id, e.amount) for e in LedgerEntry.objects.filter(
        transaction_id=response.json()["id"], direction="debit"))
    assert back == original
    assert posted_balance(Account.objects.get(pk=merchant["id"])) == 12_000
    assert_ledger_consistent(tenant_a.tenant)


def test_a_debit_beyond_the_sum_of_the_shards_is_refused_and_writes_nothing(tenant_a, make_account):
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    merchant = make_account(account_type="merchant", customer="m_1")
    account_shards_set(tenant=tenant_a.tenant, account_id=merchant["id"], shards=3, actor=ACTOR)
    for _ in range(6):
        tenant_a.post("/v1/transactions", transfer_body(bank, merchant, 500))
    before = ledger_snapshot()
    body = assert_problem(tenant_a.post("/v1/transactions", transfer_body(merchant, bank, 3_001)), 422,
                          "insufficient_funds")
    assert "3000 available" in body["detail"] and merchant["id"] in body["detail"]
    assert ledger_snapshot() == before


def test_statement_and_as_of_balance_of_a_sharded_account_cover_every_shard(tenant_a, make_account):
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    merchant = make_account(account_type="merchant", customer="m_1")
    account_shards_set(tenant=tenant_a.tenant, account_id=merchant["id"], shards=4, actor=ACTOR)
    instants = []
    for amount in (100, 200, 300, 400, 500, 600):
        assert tenant_a.post("/v1/transactions", transfer_body(bank, merchant, amount)).status_code == 201
        instants.append(LedgerEntry.objects.filter(account_id__in=account_row_ids(
            Account.objects.get(pk=merchant["id"]))).latest("created_at").created_at)
    # the statement lists every shard's entries, newest first, paged on the entries' ids
    first = tenant_a.get(f"/v1/accounts/{merchant['id']}/entries?limit=4").json()
    rest = tenant_a.get(f"/v1/accounts/{merchant['id']}/entries?limit=4&starting_after={first['data'][-1]['id']}")
    amounts = [e["amount"] for e in first["data"] + rest.json()["data"]]
    assert amounts == [600, 500, 400, 300, 200, 100] and first["has_more"] and not rest.json()["has_more"]
    assert {e["shard"] for e in first["data"] + rest.json()["data"]} <= {0, 1, 2, 3}
    # as of each instant: what had been credited by then, whatever shard it went to
    for index, instant in enumerate(instants):
        at = quote(instant.isoformat())
        balance = tenant_a.get(f"/v1/accounts/{merchant['id']}/balance?as_of={at}").json()
        assert balance["posted"] == sum((100, 200, 300, 400, 500, 600)[:index + 1]), (index, balance)


def test_shards_are_never_removed_and_an_overdraft_account_is_not_sharded(tenant_a, make_account):
    merchant = make_account(account_type="merchant", customer="m_1")
    account_shards_set(tenant=tenant_a.tenant, account_id=merchant["id"], shards=4, actor=ACTOR)
    with pytest.raises(ValidationFailed, match="never removed"):
        account_shards_set(tenant=tenant_a.tenant, account_id=merchant["id"], shards=2, actor=ACTOR)
    overdraft = make_account(allow_overdraft=True)
    with pytest.raises(ValidationFailed, match="overdraft"):
        account_shards_set(tenant=tenant_a.tenant, account_id=overdraft["id"], shards=2, actor=ACTOR)
    assert Account.objects.get(pk=overdraft["id"]).shard_count == 1
    assert not Account.rows.filter(shard_of=overdraft["id"]).exists()
    # the change is evidence on the account, and an event
    history = Account.objects.get(pk=merchant["id"]).history.first()
    assert (history.shard_count, history.history_change_reason) == (4, "spread over 4 shards")
    assert tenant_a.get("/v1/events?type=account.sharded").json()["data"][0]["data"]["object"]["shards"] == 4


def test_a_frozen_sharded_account_takes_nothing_on_any_shard(tenant_a, make_account):
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    merchant = make_account(account_type="merchant", customer="m_1")
    account_shards_set(tenant=tenant_a.tenant, account_id=merchant["id"], shards=4, actor=ACTOR)
    account_freeze(tenant=tenant_a.tenant, account_id=merchant["id"], actor=ACTOR, reason="investigation")
    assert set(Account.rows.filter(shard_of=merchant["id"]).values_list("status", flat=True)) == {"frozen"}
    before = ledger_snapshot()
    for _ in range(4):  # whichever shard a posting picks
        assert_problem(tenant_a.post("/v1/transactions", transfer_body(bank, merchant, 100)), 422,
                       "account_not_active")
    assert ledger_snapshot() == before


def test_a_shard_row_cannot_be_named_by_hand(tenant_a, make_account):
    bank, customer = funded(tenant_a, make_account, 1_000)
    merchant = make_account(account_type="merchant", customer="m_1")
    account_shards_set(tenant=tenant_a.tenant, account_id=merchant["id"], shards=2, actor=ACTOR)
    before = ledger_snapshot()
    shard = shard_row_id(merchant["id"], 1)
    body = assert_problem(tenant_a.post("/v1/transactions", transfer_body(customer, {"id": shard}, 100)), 404,
                          "not_found")
    assert body["errors"][0]["field"] == "entries[1].account"
    # nor as a payment's destination, a hold's or a payout's account
    body = assert_problem(tenant_a.post("/v1/payment_intents", {
        "amount": 100, "currency": "USD", "source_account": customer["id"], "destination_account": shard}), 404,
        "not_found")
    assert body["errors"][0]["field"] == "destination_account"
    assert_problem(tenant_a.post("/v1/holds", {"account": shard, "amount": 1, "expires_in": 60}), 404, "not_found")
    assert_problem(tenant_a.post("/v1/payouts", {"account": shard, "amount": 1}), 404, "not_found")
    assert ledger_snapshot() == before


def test_the_database_refuses_a_shard_row_that_is_not_its_accounts(tenant_a, make_account):
    make_account()
    reserve = reserve_of(tenant_a)
    columns = ("tenant_id, currency, account_type, normal_balance, status, allow_overdraft, is_system, "
               "posted_balance, under_review, last_sequence, hash_head, metadata, created_at, customer, name")
    values = "%s, 'USD', 'reserve', 'credit', 'active', false, true, 0, false, 0, '', '{}', now(), '', ''"
    for row_id, shard, count in ((f"{reserve.id}.s9", 2, 8),   # id and shard disagree
                                 (f"{reserve.id}.s8", 8, 8),   # past the count
                                 ("acct_ELSEWHERE.s1", 1, 8)):  # not named after its account
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO ledger_account (id, shard_of_id, shard, shard_count, {columns}) "
                           f"VALUES (%s, %s, %s, %s, {values})", [row_id, reserve.id, shard, count, tenant_a.tenant.id])
    # and a second logical reserve account of the tenant and currency
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO ledger_account (id, shard_of_id, shard, shard_count, {columns}) "
                       f"VALUES ('acct_SECOND', NULL, 0, 1, {values})", [tenant_a.tenant.id])


def test_the_migration_spreads_existing_system_accounts_in_place(tenant_a, make_account, settings):
    # given: system accounts (of a currency opened now) that predate shards, with holds on the
    # one reserve row
    settings.ZENTRA_SYSTEM_ACCOUNT_SHARDS = 1
    _, customer = funded(tenant_a, make_account, 10_000, currency="EUR")
    reserve = reserve_of(tenant_a, "EUR")
    assert reserve.shard_count == 1
    held = [hold_place(tenant=tenant_a.tenant, account_id=customer["id"], amount=1_000, expires_in=600, actor=ACTOR)
            for _ in range(3)]
    entries_before = list(LedgerEntry.objects.order_by("id").values_list("id", "account_id", "sequence", "hash"))
    # when: the migration's step runs
    settings.ZENTRA_SYSTEM_ACCOUNT_SHARDS = 4
    migration = importlib.import_module("ledger.migrations.0017_hot_account_shards")
    migration.shard_system_accounts(None, type("Editor", (), {"connection": connection})())
    # then: the old row is shard 0 with its entries untouched, and three empty shards beside it
    entries_after = list(LedgerEntry.objects.order_by("id").values_list("id", "account_id", "sequence", "hash"))
    assert entries_after == entries_before
    reserve.refresh_from_db()
    assert reserve.shard_count == 4 and posted_balance(reserve) == 3_000
    assert sorted(Account.rows.filter(shard_of=reserve).values_list("shard", "posted_balance")) == [
        (1, 0), (2, 0), (3, 0)]
    # the old holds resolve from the row they credited; new ones spread
    for hold in held:
        hold_release(tenant=tenant_a.tenant, hold_id=hold.id, actor=ACTOR)
    new = [hold_place(tenant=tenant_a.tenant, account_id=customer["id"], amount=10, expires_in=600, actor=ACTOR)
           for _ in range(12)]
    assert len({h.reserve_account_id for h in new}) > 1
    assert Hold.objects.filter(pk__in=[h.id for h in held], status="released").count() == 3
    run = ledger_verify(tenant=tenant_a.tenant, actor=ACTOR)
    assert run.breaks_count == 0, list(run.breaks.values_list("kind", "detail"))


def test_postings_by_the_services_keep_a_hot_accounts_limits_on_the_whole_account(tenant_a, make_account):
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    merchant = make_account(account_type="merchant", customer="m_1")
    Account.objects.filter(pk=merchant["id"]).update(max_single_debit=1_500)
    account_shards_set(tenant=tenant_a.tenant, account_id=merchant["id"], shards=4, actor=ACTOR)
    for _ in range(8):
        ledger_transaction_post(tenant=tenant_a.tenant, actor=ACTOR, entries=[
            EntryInput(bank["id"], "debit", 500), EntryInput(merchant["id"], "credit", 500)])
    before = ledger_snapshot()
    # 1,600 is more than the limit, though no one shard's part of it would be
    assert_problem(tenant_a.post("/v1/transactions", transfer_body(merchant, bank, 1_600)), 422, "policy_denied")
    assert ledger_snapshot() == before
    assert tenant_a.post("/v1/transactions", transfer_body(merchant, bank, 1_500)).status_code == 201


def test_an_operator_spreads_an_account_from_the_admin_and_sees_its_shards(client, tenant_a, make_account):
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    merchant = make_account(account_type="merchant", customer="m_1", name="Busy shop")
    client.force_login(tenant_a.member("operator"))
    response = client.post(reverse("admin:ledger_account_changelist"), {
        "action": "shard", "_selected_action": [merchant["id"]], "confirm": "yes", "shards": 4,
        "reason": "flash sale"}, follow=True)
    assert response.status_code == 200
    assert any("spread over 4 shards" in str(m) for m in response.context["messages"])
    for _ in range(6):
        tenant_a.post("/v1/transactions", transfer_body(bank, merchant, 250))
    page = client.get(reverse("admin:ledger_account_change", args=[merchant["id"]]))
    html = page.content.decode()
    assert page.status_code == 200 and 'id="account-shards"' in html
    assert "15.00" in html  # the posted balance: the sum of the shards
    assert html.count(f"{merchant['id']}.s") == 3  # the shard rows beside shard 0
    # a refusal is a message, and changes nothing
    response = client.post(reverse("admin:ledger_account_changelist"), {
        "action": "shard", "_selected_action": [merchant["id"]], "confirm": "yes", "shards": 2,
        "reason": "undo"}, follow=True)
    assert any("never removed" in str(m) for m in response.context["messages"])
    assert Account.objects.get(pk=merchant["id"]).shard_count == 4


def test_the_shard_account_command_spreads_an_account_and_refuses_clearly(tenant_a, make_account):
    merchant = make_account(account_type="merchant", customer="m_1")
    out = StringIO()
    call_command("shard_account", merchant["id"], "3", tenant=tenant_a.tenant.slug, reason="busy", stdout=out)
    assert f"{merchant['id']}: 3 shard(s), posted balance 0" in out.getvalue()
    with pytest.raises(CommandError, match="never removed"):
        call_command("shard_account", merchant["id"], "2", tenant=tenant_a.tenant.slug, reason="undo")
    with pytest.raises(CommandError, match="no tenant"):
        call_command("shard_account", merchant["id"], "4", tenant="nobody", reason="x")
    assert Account.objects.get(pk=merchant["id"]).shard_count == 3
