"""The ledger API as docs/api.md describes it: transactions (list, filters, pagination, retrieve),
statements, balances in time, the events of postings and idempotent replay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AccessDenial
from ledger.models import Account, LedgerTransaction
from webhooks.models import Event

from .checks import ledger_snapshot

pytestmark = pytest.mark.django_db

TRANSACTION_FIELDS = {"id", "object", "status", "kind", "description", "entries", "reverses", "reversed_by",
                      "metadata", "created_at", "effective_at"}
STATEMENT_FIELDS = {"id", "transaction", "direction", "amount", "currency", "balance_after", "sequence", "shard",
                    "created_at"}


def transfer_body(source, destination, amount, **extra) -> dict:
    return {"description": f"{amount}", "entries": [
        {"account": source["id"], "direction": "debit", "amount": amount},
        {"account": destination["id"], "direction": "credit", "amount": amount}], **extra}


@pytest.fixture
def bank(make_account):
    return make_account(account_type="external", normal_balance="debit", allow_overdraft=True)


@pytest.fixture
def post(tenant_a):
    def post(body, **kwargs) -> dict:
        response = tenant_a.post("/v1/transactions", body, **kwargs)
        assert response.status_code == 201, response.content
        return response.json()

    return post


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["data"]]


# --- posting and retrieving ---------------------------------------------------------------------------------


def test_a_posted_transaction_has_the_shape_of_api_md(tenant_a, bank, make_account, post):
    # given
    alice = make_account()
    # when
    txn = post(transfer_body(bank, alice, 2_500, metadata={"order": "o_1"}))
    # then
    assert set(txn) == TRANSACTION_FIELDS
    assert txn["id"].startswith("txn_") and txn["object"] == "transaction"
    assert (txn["status"], txn["kind"], txn["reverses"], txn["reversed_by"]) == ("posted", "transfer", None, None)
    assert txn["metadata"] == {"order": "o_1"} and txn["effective_at"] == txn["created_at"]
    by_account = {entry["account"]: entry for entry in txn["entries"]}
    assert by_account[bank["id"]] | {"id": None} == {"id": None, "account": bank["id"], "direction": "debit",
                                                      "amount": 2_500, "currency": "USD", "balance_after": 2_500,
                                                      "sequence": 1, "shard": 0}
    assert by_account[alice["id"]]["balance_after"] == 2_500 and by_account[alice["id"]]["direction"] == "credit"
    assert all(entry["id"].startswith("ent_") for entry in txn["entries"])


def test_effective_at_is_kept_apart_from_created_at(tenant_a, bank, make_account, post):
    # given
    alice = make_account()
    # when
    txn = post(transfer_body(bank, alice, 100, effective_at="2026-01-31T23:00:00Z"))
    # then
    assert txn["effective_at"].startswith("2026-01-31T23:00:00")
    assert txn["created_at"] != txn["effective_at"]


def test_retrieve_answers_the_posted_body_and_later_names_the_reversal(tenant_a, bank, make_account, post):
    # given
    alice = make_account()
    txn = post(transfer_body(bank, alice, 700))
    # when
    fetched = tenant_a.get(f"/v1/transactions/{txn['id']}")
    # then
    assert fetched.status_code == 200 and fetched.json() == txn
    # when reversed
    reversal = tenant_a.post(f"/v1/transactions/{txn['id']}/reverse", {"reason": "duplicate"}).json()
    # then
    assert tenant_a.get(f"/v1/transactions/{txn['id']}").json() == {**txn, "reversed_by": reversal["id"]}
    assert tenant_a.get(f"/v1/transactions/{reversal['id']}").json() == reversal
    assert reversal["kind"] == "reversal" and reversal["reverses"] == txn["id"]
    assert reversal["description"] == "duplicate" and reversal["metadata"] == {"reason": "duplicate"}
    assert sorted((e["account"], e["direction"], e["amount"]) for e in reversal["entries"]) == sorted(
        (e["account"], "credit" if e["direction"] == "debit" else "debit", e["amount"]) for e in txn["entries"])


def test_retrieve_of_another_tenants_transaction_is_a_404_with_an_access_denial(tenant_a, tenant_b, bank,
                                                                                 make_account, post):
    # given
    txn = post(transfer_body(bank, make_account(), 100))
    # when
    response = tenant_b.get(f"/v1/transactions/{txn['id']}")
    unknown = tenant_b.get("/v1/transactions/txn_doesnotexist")
    # then: the same answer as for an id that does not exist
    assert response.status_code == unknown.status_code == 404
    assert response.json()["code"] == unknown.json()["code"] == "not_found"
    assert AccessDenial.objects.filter(target=txn["id"], tenant_id=tenant_b.tenant.id).count() == 1
    assert AccessDenial.objects.filter(target="txn_doesnotexist").count() == 0


# --- list, filters, pagination --------------------------------------------------------------------------------


@pytest.fixture
def history(tenant_a, bank, make_account, post):
    """Six transactions, oldest first: three fundings, two transfers, one reversal."""
    alice, bob, carol = make_account(customer="alice"), make_account(customer="bob"), make_account(customer="carol")
    made = [post(transfer_body(bank, alice, 1_000)), post(transfer_body(bank, bob, 1_000)),
            post(transfer_body(bank, carol, 1_000)), post(transfer_body(alice, bob, 300)),
            post(transfer_body(bob, carol, 200))]
    reversal = tenant_a.post(f"/v1/transactions/{made[3]['id']}/reverse", {"reason": "mistake"})
    assert reversal.status_code == 201, reversal.content
    made.append(reversal.json())
    return {"alice": alice, "bob": bob, "carol": carol, "txns": made}


def test_list_is_newest_first(tenant_a, history):
    # when
    response = tenant_a.get("/v1/transactions")
    # then
    body = response.json()
    assert body["object"] == "list" and body["has_more"] is False
    assert ids(response) == [txn["id"] for txn in reversed(history["txns"])]
    assert body["data"][0] == tenant_a.get(f"/v1/transactions/{history['txns'][-1]['id']}").json()


def test_list_paginates_with_limit_and_starting_after(tenant_a, history):
    # given
    expected = [txn["id"] for txn in reversed(history["txns"])]
    # when: walk pages of 4
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 4} | ({"starting_after": cursor} if cursor else {})
        response = tenant_a.get("/v1/transactions", **params)
        page = ids(response)
        seen += page
        pages += 1
        if not response.json()["has_more"]:
            break
        cursor = page[-1]
    # then
    assert seen == expected and pages == 2


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"kind": "payment"}])
def test_list_refuses_bad_parameters(tenant_a, history, params):
    # when
    response = tenant_a.get("/v1/transactions", **params)
    # then
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


def test_an_unknown_cursor_is_404(tenant_a, history):
    response = tenant_a.get("/v1/transactions", starting_after="txn_nope")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_list_filters_by_account(tenant_a, history):
    # given: carol was funded and received 200 from bob
    txns = history["txns"]
    # when
    response = tenant_a.get("/v1/transactions", account=history["carol"]["id"])
    # then
    assert ids(response) == [txns[4]["id"], txns[2]["id"]]
    # and bob appears in his funding, both transfers and the reversal
    assert ids(tenant_a.get("/v1/transactions", account=history["bob"]["id"])) == [
        txns[5]["id"], txns[4]["id"], txns[3]["id"], txns[1]["id"]]


def test_list_filters_by_kind(tenant_a, history):
    # when
    reversals = tenant_a.get("/v1/transactions", kind="reversal")
    transfers = tenant_a.get("/v1/transactions", kind="transfer")
    # then
    assert ids(reversals) == [history["txns"][5]["id"]]
    assert ids(transfers) == [txn["id"] for txn in reversed(history["txns"][:5])]


def test_list_filters_combine_and_paginate(tenant_a, history):
    # given
    txns, bob = history["txns"], history["bob"]
    # when: bob's transfers, one per page
    first = tenant_a.get("/v1/transactions", account=bob["id"], kind="transfer", limit=1)
    second = tenant_a.get("/v1/transactions", account=bob["id"], kind="transfer", limit=1,
                          starting_after=ids(first)[0])
    rest = tenant_a.get("/v1/transactions", account=bob["id"], kind="transfer", limit=5,
                        starting_after=ids(second)[0])
    # then
    assert ids(first) == [txns[4]["id"]] and first.json()["has_more"] is True
    assert ids(second) == [txns[3]["id"]] and second.json()["has_more"] is True
    assert ids(rest) == [txns[1]["id"]] and rest.json()["has_more"] is False


def test_list_by_an_account_of_another_tenant_is_a_404(tenant_a, tenant_b, history):
    # when
    response = tenant_b.get("/v1/transactions", account=history["alice"]["id"])
    # then
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert AccessDenial.objects.filter(target=history["alice"]["id"], tenant_id=tenant_b.tenant.id).count() == 1


def test_list_shows_only_the_tenants_own_transactions(tenant_a, tenant_b, history, make_account):
    # given
    b_bank = make_account(tenant_b, account_type="external", normal_balance="debit", allow_overdraft=True)
    b_txn = tenant_b.post("/v1/transactions", transfer_body(b_bank, make_account(tenant_b), 5)).json()
    # when
    a_ids, b_ids = ids(tenant_a.get("/v1/transactions")), ids(tenant_b.get("/v1/transactions"))
    # then
    assert b_ids == [b_txn["id"]] and b_txn["id"] not in a_ids
    # and a cursor of the other tenant is refused like an unknown one
    assert tenant_b.get("/v1/transactions", starting_after=a_ids[0]).status_code == 404


# --- statements -----------------------------------------------------------------------------------------------


def test_statement_is_newest_first_with_running_balances(tenant_a, history):
    # given: bob: +1,000 funding, +300 from alice, -200 to carol, -300 reversal
    bob = history["bob"]
    # when
    response = tenant_a.get(f"/v1/accounts/{bob['id']}/entries")
    # then
    assert response.status_code == 200
    data = response.json()["data"]
    assert all(set(entry) == STATEMENT_FIELDS for entry in data)
    assert [(e["sequence"], e["direction"], e["amount"], e["balance_after"]) for e in data] == [
        (4, "debit", 300, 800), (3, "debit", 200, 1_100), (2, "credit", 300, 1_300), (1, "credit", 1_000, 1_000)]
    txns = history["txns"]
    assert [e["transaction"] for e in data] == [txns[5]["id"], txns[4]["id"], txns[3]["id"], txns[1]["id"]]
    assert all(e["currency"] == "USD" and e["id"].startswith("ent_") for e in data)
    assert [e["created_at"] for e in data] == sorted((e["created_at"] for e in data), reverse=True)
    assert tenant_a.get(f"/v1/accounts/{bob['id']}/balance").json()["posted"] == data[0]["balance_after"]


def test_statement_paginates(tenant_a, history):
    # given
    bob = history["bob"]
    # when
    first = tenant_a.get(f"/v1/accounts/{bob['id']}/entries", limit=3)
    rest = tenant_a.get(f"/v1/accounts/{bob['id']}/entries", limit=3, starting_after=first.json()["data"][-1]["id"])
    # then
    assert [e["sequence"] for e in first.json()["data"]] == [4, 3, 2] and first.json()["has_more"] is True
    assert [e["sequence"] for e in rest.json()["data"]] == [1] and rest.json()["has_more"] is False


def test_statement_of_another_tenants_account_is_a_404(tenant_b, history):
    # when
    response = tenant_b.get(f"/v1/accounts/{history['bob']['id']}/entries")
    # then
    assert response.status_code == 404 and response.json()["code"] == "not_found"


# --- balances in time -----------------------------------------------------------------------------------------


def test_balance_as_of_before_between_and_after_postings(tenant_a, bank, make_account, post):
    # given
    alice = make_account()
    before_any = timezone.now()
    post(transfer_body(bank, alice, 1_000))
    between = timezone.now()
    post(transfer_body(bank, alice, 250))
    after_all = timezone.now()

    def posted_as_of(instant):
        response = tenant_a.get(f"/v1/accounts/{alice['id']}/balance", as_of=instant.isoformat())
        assert response.status_code == 200, response.content
        return response.json()

    # then
    assert posted_as_of(before_any)["posted"] == 0
    assert posted_as_of(before_any - timedelta(days=365))["posted"] == 0
    assert posted_as_of(between)["posted"] == 1_000
    assert posted_as_of(after_all)["posted"] == 1_250
    now = tenant_a.get(f"/v1/accounts/{alice['id']}/balance").json()
    assert now["posted"] == 1_250 and now["account"] == alice["id"] and now["currency"] == "USD"
    assert set(now) == {"account", "currency", "posted", "held", "available", "as_of"}
    assert posted_as_of(between)["available"] == 1_000


def test_as_of_accepts_any_offset_for_the_same_instant(tenant_a, bank, make_account, post, clock):
    # given: a whole second `between` two postings
    alice = make_account()
    post(transfer_body(bank, alice, 1_000))
    between = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    clock.past(between)  # the next posting is certainly after `between`
    post(transfer_body(bank, alice, 250))
    utc = between.strftime("%Y-%m-%dT%H:%M:%S")
    plus_one = (between + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    minus_five = (between - timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
    spellings = [f"{utc}Z", f"{utc}+00:00", f"{plus_one}+01:00", f"{minus_five}-05:30",
                 f"{utc.replace('T', ' ')}+00:00", f"{utc}.000000Z"]
    for text in spellings:
        # when
        response = tenant_a.get(f"/v1/accounts/{alice['id']}/balance", as_of=text)
        # then
        assert response.status_code == 200, (text, response.content)
        assert response.json()["posted"] == 1_000, text
    # and offsets PostgreSQL would refuse (it stops at 15:59) or instants past Python's range
    wide = (between - timedelta(hours=23, minutes=59)).strftime("%Y-%m-%dT%H:%M:%S")
    assert tenant_a.get(f"/v1/accounts/{alice['id']}/balance", as_of=f"{wide}-23:59").json()["posted"] == 1_000
    for text, posted in [("0001-01-01T00:00:00+05:00", 0), ("9999-12-31T23:59:59-05:00", 1_250)]:
        response = tenant_a.get(f"/v1/accounts/{alice['id']}/balance", as_of=text)
        assert response.status_code == 200 and response.json()["posted"] == posted, (text, response.content)


# --- events ---------------------------------------------------------------------------------------------------


def test_posted_and_reversed_events_carry_the_api_bodies(tenant_a, bank, make_account, post):
    # given
    alice = make_account()
    txn = post(transfer_body(bank, alice, 900))
    reversal = tenant_a.post(f"/v1/transactions/{txn['id']}/reverse", {"reason": "refund"}).json()
    # then: one event each, in the database and through the API, with the API's body
    posted = Event.objects.get(type="transaction.posted", resource_id=txn["id"])
    reversed_ = Event.objects.get(type="transaction.reversed", resource_id=reversal["id"])
    assert posted.data == {"object": txn} and posted.tenant_id == tenant_a.tenant.id
    assert reversed_.data == {"object": reversal}
    listed = tenant_a.get("/v1/events", type="transaction.*").json()["data"]
    assert [(e["type"], e["data"]["object"]) for e in listed] == [("transaction.reversed", reversal),
                                                                  ("transaction.posted", txn)]
    assert Event.objects.filter(tenant=tenant_a.tenant, type__startswith="transaction.").count() == 2


# --- idempotency ------------------------------------------------------------------------------------------------


def test_a_replayed_post_posts_once(tenant_a, bank, make_account):
    # given
    alice = make_account()
    body = transfer_body(bank, alice, 4_200)
    first = tenant_a.post("/v1/transactions", body, key="pay-1")
    after_first = ledger_snapshot()
    # when
    replay = tenant_a.post("/v1/transactions", body, key="pay-1")
    # then
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert ledger_snapshot() == after_first
    assert LedgerTransaction.objects.filter(tenant=tenant_a.tenant).count() == 1
    assert Account.objects.get(pk=alice["id"]).posted_balance == 4_200
    assert Event.objects.filter(type="transaction.posted").count() == 1


def test_the_same_key_with_another_body_is_refused_and_posts_nothing(tenant_a, bank, make_account):
    # given
    alice = make_account()
    assert tenant_a.post("/v1/transactions", transfer_body(bank, alice, 100), key="pay-2").status_code == 201
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions", transfer_body(bank, alice, 101), key="pay-2")
    # then
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"
    assert ledger_snapshot() == before


def test_a_replayed_reversal_reverses_once(tenant_a, bank, make_account, post):
    # given
    txn = post(transfer_body(bank, make_account(), 100))
    first = tenant_a.post(f"/v1/transactions/{txn['id']}/reverse", {"reason": "x"}, key="rev-1")
    after_first = ledger_snapshot()
    # when
    replay = tenant_a.post(f"/v1/transactions/{txn['id']}/reverse", {"reason": "x"}, key="rev-1")
    # then: the stored 201, not a 409
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert ledger_snapshot() == after_first


def test_a_replayed_refusal_is_the_stored_refusal(tenant_a, bank, make_account):
    # given: a refused overdraft
    alice, bob = make_account(), make_account()
    first = tenant_a.post("/v1/transactions", transfer_body(alice, bob, 100), key="pay-3")
    assert first.status_code == 422
    # when: the money arrives, and the client retries with the same key
    tenant_a.post("/v1/transactions", transfer_body(bank, alice, 100))
    before = ledger_snapshot()
    replay = tenant_a.post("/v1/transactions", transfer_body(alice, bob, 100), key="pay-3")
    # then: the stored answer, nothing posted
    assert replay.status_code == 422 and replay.json() == first.json()
    assert ledger_snapshot() == before
