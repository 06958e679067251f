"""A write's answer commits with its change (issue 14, item 4): on the default connection a
posting or a hold request commits twice (the Idempotency-Key claim, then the change together
with its stored answer), and a change that does not commit leaves no answer behind."""

from __future__ import annotations

import pytest
from django.db import connection

import zentra.api.views
from ledger.models import LedgerTransaction
from zentra.api.models import IdempotencyKey

pytestmark = pytest.mark.django_db(transaction=True)
WRITES = ("INSERT", "UPDATE", "DELETE")


def commits_of(call, monkeypatch) -> list[str]:
    """The commits a call makes on the default connection: each transaction committed (an
    atomic block's commit), and each write statement run outside one (autocommit)."""
    seen: list[str] = []
    commit = connection.commit

    def counting_commit():
        seen.append("transaction")
        return commit()

    def watch(execute, sql, params, many, context):
        if not connection.in_atomic_block and sql.lstrip().split(None, 1)[0].upper() in WRITES:
            seen.append(sql.lstrip()[:60])
        return execute(sql, params, many, context)

    monkeypatch.setattr(connection, "commit", counting_commit)
    with connection.execute_wrapper(watch):
        call()
    return seen


@pytest.fixture
def funded(tenant_a, make_account):
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    alice = make_account()
    assert tenant_a.post("/v1/transactions", {"entries": [
        {"account": bank["id"], "direction": "debit", "amount": 10_000},
        {"account": alice["id"], "direction": "credit", "amount": 10_000}]}).status_code == 201
    return bank, alice


def test_a_posting_request_commits_twice_and_its_answer_is_stored_with_it(tenant_a, funded, monkeypatch):
    bank, alice = funded
    body = {"entries": [{"account": alice["id"], "direction": "debit", "amount": 100},
                        {"account": bank["id"], "direction": "credit", "amount": 100}]}
    responses = []
    commits = commits_of(lambda: responses.append(tenant_a.post("/v1/transactions", body, key="two-commits")),
                         monkeypatch)
    assert responses[0].status_code == 201, responses[0].content
    assert len(commits) == 2, commits  # the claim (autocommit), the change with its answer
    stored = IdempotencyKey.objects.get(tenant=tenant_a.tenant, key="two-commits")
    assert (stored.status, stored.response_status, stored.response_body) == ("completed", 201, responses[0].json())
    replay = tenant_a.post("/v1/transactions", body, key="two-commits")
    assert replay.json() == responses[0].json() and replay["Idempotent-Replayed"] == "true"


def test_hold_place_capture_and_release_requests_commit_twice_each(tenant_a, funded, make_account, monkeypatch):
    _, alice = funded
    shop = make_account(account_type="merchant", customer="shop")
    calls = {
        "place": lambda: tenant_a.post("/v1/holds", {"account": alice["id"], "amount": 500, "expires_in": 600}),
    }
    placed = []
    assert len(commits_of(lambda: placed.append(calls["place"]()), monkeypatch)) == 2
    other = tenant_a.post("/v1/holds", {"account": alice["id"], "amount": 300, "expires_in": 600}).json()
    monkeypatch.undo()
    answers = []
    capture = commits_of(lambda: answers.append(tenant_a.post(
        f"/v1/holds/{placed[0].json()['id']}/capture", {"destination_account": shop["id"], "amount": 200})),
        monkeypatch)
    monkeypatch.undo()
    release = commits_of(lambda: answers.append(tenant_a.post(f"/v1/holds/{other['id']}/release", {})), monkeypatch)
    assert [a.status_code for a in answers] == [200, 200], [a.content for a in answers]
    assert (len(capture), len(release)) == (2, 2), (capture, release)


def test_a_change_that_does_not_commit_leaves_no_answer_and_the_key_can_be_retried(tenant_a, funded, monkeypatch):
    bank, alice = funded
    body = {"entries": [{"account": alice["id"], "direction": "debit", "amount": 100},
                        {"account": bank["id"], "direction": "credit", "amount": 100}]}
    postings = LedgerTransaction.objects.count()
    real_answer = zentra.api.views.idempotency_answer

    def answer_then_fail(claim, status, body):
        real_answer(claim, status, body)  # the answer is written inside the change's transaction...
        raise RuntimeError("the process dies before the commit")  # ...which then never commits

    monkeypatch.setattr(zentra.api.views, "idempotency_answer", answer_then_fail)
    tenant_a.client.raise_request_exception = False
    failed = tenant_a.post("/v1/transactions", body, key="atomic-answer")
    assert failed.status_code == 500
    assert LedgerTransaction.objects.count() == postings  # no change...
    assert not IdempotencyKey.objects.filter(tenant=tenant_a.tenant, key="atomic-answer").exists()  # ...no answer
    monkeypatch.undo()
    retried = tenant_a.post("/v1/transactions", body, key="atomic-answer")
    assert retried.status_code == 201 and LedgerTransaction.objects.count() == postings + 1


def test_payment_intent_and_payout_creation_commit_twice_each(tenant_a, funded, make_account, monkeypatch):
    _, alice = funded
    shop = make_account(account_type="merchant", customer="shop")
    answers = []
    intent = commits_of(lambda: answers.append(tenant_a.post("/v1/payment_intents", {
        "amount": 100, "currency": "USD", "source_account": alice["id"], "destination_account": shop["id"]})),
        monkeypatch)
    monkeypatch.undo()
    payout = commits_of(lambda: answers.append(tenant_a.post("/v1/payouts", {"account": alice["id"], "amount": 50})),
                        monkeypatch)
    assert [a.status_code for a in answers] == [201, 201], [a.content for a in answers]
    assert (len(intent), len(payout)) == (2, 2), (intent, payout)
    for answer in answers:
        stored = IdempotencyKey.objects.get(tenant=tenant_a.tenant, request_id=answer["X-Request-Id"])
        assert stored.response_body == answer.json()
