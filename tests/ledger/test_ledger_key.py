"""The ledger key and signed checkpoints (docs/security.md): someone with database access but not
the ledger key cannot forge a chain that verifies; a holder of the key cannot rewrite history
before the latest signed checkpoint; an account with an open break takes no debits until an
owner resolves the break."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from audit.actors import Actor
from ledger.chain import canonical_entry, entry_hash
from ledger.models import Account, LedgerCheckpoint, LedgerEntry, ReconciliationBreak, new_entry_id, new_transaction_id
from ledger.services.breaks import break_resolve
from ledger.services.checkpoints import checkpoint_take
from ledger.services.reconciliation import ledger_verify
from zentra.keys import LEGACY_KEY_ID, ledger_keyring, signing_keys

from .checks import assert_ledger_consistent, ledger_snapshot
from .test_refusals import assert_problem, transfer_body

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


@pytest.fixture
def desk(tenant_a, make_account):
    """Tenant A with a funding account and a merchant holding 5,000 through the service."""

    class Desk:
        funding = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
        merchant = make_account(account_type="merchant", customer="m_1")

    assert tenant_a.post("/v1/transactions", transfer_body(Desk.funding, Desk.merchant, 5_000)).status_code == 201
    return Desk


def forge_posting(debit_id: str, credit_id: str, amount: int, *, key_id: str) -> None:
    """What a database superuser without the ledger key can do: a balanced posting that follows
    every rule PostgreSQL checks, with chain links recomputed in plain SHA-256."""
    now = timezone.now()
    txn_id = new_transaction_id()
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO ledger_ledgertransaction (id, tenant_id, kind, description, metadata, effective_at,"
                       " created_at, source_request_id, actor) SELECT %s, tenant_id, 'transfer', 'forged', '{}', %s,"
                       " %s, '', 'user:1' FROM ledger_account WHERE id = %s", [txn_id, now, now, debit_id])
        for account_id, direction in ((debit_id, "debit"), (credit_id, "credit")):
            cursor.execute("SELECT tenant_id, currency, normal_balance, last_sequence, posted_balance, hash_head"
                           " FROM ledger_account WHERE id = %s", [account_id])
            tenant_id, currency, normal, sequence, balance, head = cursor.fetchone()
            sequence += 1
            balance += amount if direction == normal else -amount
            entry_id = new_entry_id()
            canonical = canonical_entry(entry_id=entry_id, transaction_id=txn_id, account_id=account_id,
                                        direction=direction, amount=amount, currency=currency, sequence=sequence,
                                        balance_after=balance, created_at=now)
            link = hashlib.sha256(f"{head}|{canonical}".encode()).hexdigest()
            cursor.execute("INSERT INTO ledger_ledgerentry (id, tenant_id, transaction_id, account_id, direction,"
                           " amount, currency, sequence, balance_after, hash, key_id, created_at)"
                           " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                           [entry_id, tenant_id, txn_id, account_id, direction, amount, currency, sequence, balance,
                            link, key_id, now])
            cursor.execute("UPDATE ledger_account SET last_sequence = %s, posted_balance = %s, hash_head = %s"
                           " WHERE id = %s", [sequence, balance, link, account_id])


def test_entries_are_chained_with_the_ledger_key(desk):
    # given: a posting made through the service
    entry = LedgerEntry.objects.filter(account_id=desk.merchant["id"]).get()
    # then: its link is the keyed HMAC, not a plain hash anyone could compute
    assert entry.key_id == ledger_keyring().current_id != LEGACY_KEY_ID
    canonical = canonical_entry(
        entry_id=entry.id, transaction_id=entry.transaction_id, account_id=entry.account_id,
        direction=entry.direction, amount=entry.amount, currency=entry.currency, sequence=entry.sequence,
        balance_after=entry.balance_after, created_at=entry.created_at)
    plain = hashlib.sha256(f"|{canonical}".encode()).hexdigest()
    assert entry.hash != plain
    assert_ledger_consistent(Account.objects.get(pk=desk.merchant["id"]).tenant)


@pytest.mark.parametrize("key_id", ["current", LEGACY_KEY_ID], ids=["claims-the-key", "claims-legacy"])
def test_a_forged_posting_with_plain_hashes_is_found_and_its_money_cannot_leave(tenant_a, desk, key_id):
    # given: a superuser forges 1,000,000 into the merchant account with recomputed plain hashes
    forge_posting(desk.funding["id"], desk.merchant["id"], 1_000_000,
                  key_id=ledger_keyring().current_id if key_id == "current" else key_id)
    # when
    run = ledger_verify(tenant=tenant_a.tenant, actor=SYSTEM)
    # then: verification names the forged entries
    kinds = {(b.account_id, b.kind) for b in run.breaks.all()}
    expected = "hash_mismatch" if key_id == "current" else "legacy_link_after_key"
    assert (desk.merchant["id"], expected) in kinds, kinds
    assert run.status == run.BROKEN
    # and the money cannot be paid out: the account is under review
    assert Account.objects.get(pk=desk.merchant["id"]).under_review
    before = ledger_snapshot()
    payout = tenant_a.post("/v1/payouts", {"account": desk.merchant["id"], "amount": 1_000_000})
    body = assert_problem(payout, 409, "account_under_review")
    assert desk.merchant["id"] in body["detail"]
    assert ledger_snapshot() == before
    # the other side of the forged posting is under review too: nothing leaves it either
    assert Account.objects.get(pk=desk.funding["id"]).under_review
    refused = tenant_a.post("/v1/transactions", transfer_body(desk.funding, desk.merchant, 10))
    assert_problem(refused, 409, "account_under_review")


def test_an_owner_resolves_the_break_with_a_reason_and_debits_resume(tenant_a, desk):
    # given
    forge_posting(desk.funding["id"], desk.merchant["id"], 700, key_id=ledger_keyring().current_id)
    run = ledger_verify(tenant=tenant_a.tenant, actor=SYSTEM)
    owner = Actor.for_user(tenant_a.member("owner"))
    # when
    for found in run.breaks.filter(account_id=desk.merchant["id"]):
        break_resolve(tenant=tenant_a.tenant, break_id=found.pk, actor=owner, resolution="false_positive",
                      note="forged entry txn reversed by adjusting posting #12")
    # then
    assert not Account.objects.get(pk=desk.merchant["id"]).under_review
    payout = tenant_a.post("/v1/payouts", {"account": desk.merchant["id"], "amount": 100})
    assert payout.status_code == 201, payout.content
    resolved = ReconciliationBreak.objects.filter(account_id=desk.merchant["id"]).first()
    assert resolved.history.first().note.startswith("forged entry")
    # and the next verification finds the same anomaly but does not put the account back under review
    again = ledger_verify(tenant=tenant_a.tenant, actor=SYSTEM)
    assert again.breaks.filter(account_id=desk.merchant["id"], resolved_at__isnull=False).exists()
    assert not Account.objects.get(pk=desk.merchant["id"]).under_review


def test_rotating_the_ledger_key_rewrites_nothing_and_old_entries_still_verify(tenant_a, desk):
    # given: entries chained under the first key
    first_id = ledger_keyring().current_id
    with override_settings(ZENTRA_LEDGER_KEY="second-ledger-key-for-tests",
                           ZENTRA_LEDGER_KEYS_RETIRED=f"development-ledger-key:{_secret()}"):
        # when: the key rotates and posting continues
        assert tenant_a.post("/v1/transactions", transfer_body(desk.funding, desk.merchant, 50)).status_code == 201
        # then: both keys' entries verify, each under its own key
        assert {e.key_id for e in LedgerEntry.objects.filter(account_id=desk.merchant["id"])} == {
            first_id, ledger_keyring().current_id}
        assert ledger_verify(tenant=tenant_a.tenant, actor=SYSTEM).breaks_count == 0
    # and a process that lost the retired key reports it instead of passing
    with override_settings(ZENTRA_LEDGER_KEY="second-ledger-key-for-tests"):
        kinds = set(ledger_verify(tenant=tenant_a.tenant, actor=SYSTEM).breaks.values_list("kind", flat=True))
    assert kinds == {"unknown_ledger_key"}


def _secret() -> str:
    from django.conf import settings
    return settings.SECRET_KEY


def test_a_signed_checkpoint_catches_history_rewritten_with_the_key(tenant_a, desk):
    # given: a checkpoint signs the merchant's head
    checkpoint = checkpoint_take(tenant=tenant_a.tenant, reason="on_demand", actor=SYSTEM)
    head = checkpoint.heads.get(account_id=desk.merchant["id"])
    assert signing_keys().kid == checkpoint.kid
    # when: someone holding the ledger key back-dates the merchant's entry and recomputes its link
    # with the key, so the chain itself verifies (triggers off, as a superuser)
    entry = LedgerEntry.objects.get(account_id=desk.merchant["id"], sequence=head.sequence)
    entry.created_at -= timedelta(days=30)
    rewritten = entry_hash("", entry)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE ledger_ledgerentry SET created_at = %s, hash = %s WHERE id = %s",
                       [entry.created_at, rewritten, entry.id])
        cursor.execute("UPDATE ledger_account SET hash_head = %s WHERE id = %s", [rewritten, desk.merchant["id"]])
        cursor.execute("SET LOCAL session_replication_role = origin")
    # then: the chain alone would pass; the signed head does not
    breaks = ledger_verify(tenant=tenant_a.tenant, actor=SYSTEM).breaks.all()
    assert {(b.account_id, b.kind) for b in breaks} == {(desk.merchant["id"], "checkpoint_mismatch")}


def test_a_tampered_checkpoint_fails_its_signature(tenant_a, desk):
    # given
    checkpoint = checkpoint_take(tenant=tenant_a.tenant, reason="on_demand", actor=SYSTEM)
    # when: its recorded head is changed behind the service's back
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE ledger_checkpointhead SET sequence = sequence + 5 WHERE checkpoint_id = %s",
                       [checkpoint.id])
        cursor.execute("SET LOCAL session_replication_role = origin")
    # then
    kinds = set(ledger_verify(tenant=tenant_a.tenant, actor=SYSTEM).breaks.values_list("kind", flat=True))
    assert "checkpoint_signature_invalid" in kinds


def test_legacy_entries_are_sealed_by_the_checkpoint_taken_when_the_key_arrives(tenant_a, desk):
    # given: a ledger written before the key (entries with plain links under `legacy`)
    forge_posting(desk.funding["id"], desk.merchant["id"], 300, key_id=LEGACY_KEY_ID)
    # when: the first verification after the key finds no checkpoint yet, it seals them
    assert not LedgerCheckpoint.objects.filter(tenant=tenant_a.tenant).exists()
    run = ledger_verify(tenant=tenant_a.tenant, actor=SYSTEM)
    # then: a key_introduced checkpoint exists and the sealed legacy entries pass
    assert LedgerCheckpoint.objects.filter(tenant=tenant_a.tenant, reason="key_introduced").count() == 1
    kinds = set(run.breaks.values_list("kind", flat=True))
    assert "unsealed_legacy_entry" not in kinds
    # but a legacy link written after a keyed one is still a break
    assert "legacy_link_after_key" in kinds


def test_checkpoints_and_their_heads_are_append_only(tenant_a, desk):
    checkpoint = checkpoint_take(tenant=tenant_a.tenant, reason="on_demand", actor=SYSTEM)
    with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_ledgercheckpoint SET reason = 'daily' WHERE id = %s", [checkpoint.id])


def test_signing_keys_are_public(client):
    # when
    response = client.get("/v1/signing_keys")
    # then
    assert response.status_code == 200
    (key,) = response.json()["data"]
    assert key == {"object": "signing_key", "kid": signing_keys().kid, "algorithm": "Ed25519",
                   "public_key": key["public_key"], "status": "current"}


def test_in_the_admin_an_owner_resolves_a_break_with_a_reason_and_an_operator_cannot(client, tenant_a, desk):
    # given: a forged posting found by verification
    forge_posting(desk.funding["id"], desk.merchant["id"], 700, key_id=ledger_keyring().current_id)
    run = ledger_verify(tenant=tenant_a.tenant, actor=SYSTEM)
    merchant_breaks = [b.pk for b in run.breaks.filter(account_id=desk.merchant["id"])]
    changelist = "/admin/ledger/reconciliationbreak/"
    body = {"action": "resolve", "_selected_action": merchant_breaks, "confirm": "yes",
            "resolution": "false_positive", "note": "forged entry reversed by an adjusting posting"}
    # when: an operator tries
    client.force_login(tenant_a.member("operator"))
    client.post(changelist, body, follow=True)
    # then: nothing resolved
    assert Account.objects.get(pk=desk.merchant["id"]).under_review
    # when: the owner, first without a reason, then with one
    client.force_login(tenant_a.member("owner"))
    without = client.post(changelist, {**body, "note": ""})
    assert without.status_code == 200 and "note" in without.context["form"].errors
    done = client.post(changelist, body, follow=True)
    # then
    assert done.status_code == 200
    assert not ReconciliationBreak.objects.filter(pk__in=merchant_breaks, resolved_at__isnull=True).exists()
    assert not Account.objects.get(pk=desk.merchant["id"]).under_review
    assert set(ReconciliationBreak.objects.filter(pk__in=merchant_breaks).values_list("resolved_by", flat=True)) == {
        f"user:{tenant_a.member('owner').pk}"}
