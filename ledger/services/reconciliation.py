"""Verification of the ledger from its one history (verify_ledger, the nightly job).

For every account: stored balance = sum of entries = last balance_after, sequences 1..N with
no gap, each balance_after follows from the previous one, the hash chain recomputes to the
stored head under the ledger key each entry names (`legacy` entries only before the first keyed
one, and only up to the heads a signed checkpoint sealed), and the chain agrees with the latest
signed checkpoint. Per tenant and currency: debits equal credits, and each reserve account
holds exactly the remaining amounts of its active holds. The read runs in one
REPEATABLE READ snapshot, so postings made meanwhile cannot show up as false breaks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor
from tenants.models import Tenant
from zentra.keys import LEGACY_KEY_ID

from ..chain import canonical_entry, chain_hash
from ..models import Account, Hold, LedgerEntry, ReconciliationBreak, ReconciliationRun
from .checkpoints import checkpoint_heads, checkpoint_latest, checkpoint_signature_valid, legacy_entries_seal

Progress = Callable[[int, int], None]


@dataclass
class Finding:
    kind: str
    detail: str
    account_id: str = ""
    currency: str = ""


@dataclass
class _AccountState:
    balance: int = 0
    sequence: int = 0
    hash: str = ""
    keyed: bool = False
    findings: list[Finding] = field(default_factory=list)


def _check_tenant(tenant: Tenant, progress: Progress | None, progress_offset: int,
                  total: int) -> tuple[int, int, list[Finding]]:
    accounts = {a.id: a for a in Account.rows.filter(tenant=tenant)}  # every row: shards keep their own chains
    states: dict[str, _AccountState] = defaultdict(_AccountState)
    net_by_currency: dict[str, int] = defaultdict(int)
    findings: list[Finding] = []
    sealed = _checkpoint_heads(tenant, findings)
    entries = (LedgerEntry.objects.filter(tenant=tenant).order_by("account_id", "sequence")
               .values_list("id", "transaction_id", "account_id", "direction", "amount", "currency", "sequence",
                            "balance_after", "hash", "key_id", "created_at"))
    count = 0
    for (entry_id, txn_id, account_id, direction, amount, currency, sequence, balance_after, stored_hash, key_id,
         created_at) in entries.iterator(chunk_size=5000):
        count += 1
        account = accounts[account_id]
        state = states[account_id]
        net_by_currency[currency] += amount if direction == "debit" else -amount
        state.balance += amount if direction == account.normal_balance else -amount
        if sequence != state.sequence + 1:
            findings.append(Finding("sequence_gap", f"entry {entry_id} has sequence {sequence}, expected "
                                    f"{state.sequence + 1}", account_id))
        if balance_after != state.balance:
            findings.append(Finding("balance_after_mismatch", f"entry {entry_id} says balance_after "
                                    f"{balance_after}, the entries sum to {state.balance}", account_id))
        canonical = canonical_entry(
            entry_id=entry_id, transaction_id=txn_id, account_id=account_id, direction=direction, amount=amount,
            currency=currency, sequence=sequence, balance_after=balance_after, created_at=created_at)
        try:
            expected_hash = chain_hash(state.hash, canonical, key_id)
        except KeyError:
            findings.append(Finding("unknown_ledger_key", f"entry {entry_id} (sequence {sequence}) names ledger key "
                                    f"{key_id!r}, which this service does not hold", account_id))
            expected_hash = stored_hash
        if stored_hash != expected_hash:
            findings.append(Finding("hash_mismatch", f"entry {entry_id} (sequence {sequence}) does not chain: "
                                    "its content or a predecessor changed", account_id))
        if key_id == LEGACY_KEY_ID:
            if state.keyed:
                findings.append(Finding("legacy_link_after_key", f"entry {entry_id} (sequence {sequence}) has an "
                                        "unkeyed link after keyed ones: written behind the service's back",
                                        account_id))
            elif sequence > sealed.get(account_id, (0, ""))[0]:
                findings.append(Finding("unsealed_legacy_entry", f"entry {entry_id} (sequence {sequence}) has an "
                                        "unkeyed link that no signed checkpoint sealed", account_id))
        else:
            state.keyed = True
        head = sealed.get(account_id)
        if head is not None and head[0] == sequence and head[1] != stored_hash:
            findings.append(Finding("checkpoint_mismatch", f"entry {entry_id} (sequence {sequence}) differs from "
                                    "the chain head the latest signed checkpoint recorded", account_id))
        state.sequence, state.hash = sequence, stored_hash
        if progress and count % 1000 == 0:
            progress(progress_offset + count, total)
    for account_id, (sequence, _) in sorted(sealed.items()):
        seen = states[account_id].sequence if account_id in states else 0
        if sequence > seen:
            findings.append(Finding("checkpoint_mismatch", f"the latest signed checkpoint recorded entry {sequence}, "
                                    "which is missing", account_id))
    for account in accounts.values():
        state = states.get(account.id, _AccountState())
        if account.posted_balance != state.balance:
            findings.append(Finding("balance_mismatch", f"stored balance {account.posted_balance}, entries sum to "
                                    f"{state.balance}", account.id))
        if account.last_sequence != state.sequence:
            findings.append(Finding("sequence_head_mismatch", f"stored last sequence {account.last_sequence}, "
                                    f"entries end at {state.sequence}", account.id))
        if account.hash_head != state.hash:
            findings.append(Finding("hash_head_mismatch", "stored chain head differs from the last entry's hash",
                                    account.id))
    # Reserve accounts hold exactly what active holds still reserve (lapsed ones included
    # until the expiry job releases them).
    outstanding: dict[str, int] = defaultdict(int)
    for hold in Hold.objects.filter(tenant=tenant, status=Hold.ACTIVE).only("reserve_account_id", "amount",
                                                                          "captured_amount", "released_amount"):
        outstanding[hold.reserve_account_id] += hold.remaining
    for account in accounts.values():
        if account.account_type != "reserve" or not account.is_system:
            continue
        reserved = states[account.id].balance if account.id in states else 0
        if reserved != outstanding.get(account.id, 0):
            findings.append(Finding("reserve_mismatch", f"reserve holds {reserved}, active holds reserve "
                                    f"{outstanding.get(account.id, 0)}", account.id))
    for currency, net in sorted(net_by_currency.items()):
        if net != 0:
            findings.append(Finding("trial_balance", f"debits minus credits in {currency} = {net}",
                                    currency=currency))
    return len(accounts), count, findings


def _checkpoint_heads(tenant: Tenant, findings: list[Finding]) -> dict[str, tuple[int, str]]:
    """The heads of the tenant's latest checkpoint, if its signature holds (a finding otherwise)."""
    checkpoint = checkpoint_latest(tenant)
    if checkpoint is None:
        return {}
    heads = checkpoint_heads(checkpoint)
    if not checkpoint_signature_valid(checkpoint, heads):
        findings.append(Finding("checkpoint_signature_invalid", f"checkpoint {checkpoint.id} does not verify under "
                                f"signing key {checkpoint.kid}: it or its heads changed"))
        return {}
    return {account_id: (sequence, hash_head) for account_id, sequence, hash_head in heads}


def ledger_verify(*, tenant: Tenant, actor: Actor, trigger: str = "command", progress: Progress | None = None,
                  progress_offset: int = 0, progress_total: int = 0) -> ReconciliationRun:
    """Verify one tenant's ledger and store the run with its breaks."""
    started = timezone.now()
    legacy_entries_seal(tenant=tenant, actor=actor)
    # One snapshot for the whole read (unless a caller's transaction already gives one).
    own_snapshot = not connection.in_atomic_block
    with transaction.atomic():
        if own_snapshot:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        accounts_checked, entries_checked, findings = _check_tenant(tenant, progress, progress_offset,
                                                                    progress_total)
    with transaction.atomic():
        run = ReconciliationRun.objects.create(
            tenant=tenant, trigger=trigger, actor=str(actor), started_at=started, finished_at=timezone.now(),
            accounts_checked=accounts_checked, entries_checked=entries_checked, breaks_count=len(findings),
            status=ReconciliationRun.BROKEN if findings else ReconciliationRun.OK)
        _breaks_record(run, findings)
    return run


def _breaks_record(run: ReconciliationRun, findings: list[Finding]) -> None:
    """Store the run's breaks. A finding an owner already resolved (same account, kind and
    detail: entries are append-only, so a forged one is found again every night) is stored as
    resolved by that decision; every other one puts its account under review."""
    resolved = {(b.account_id, b.kind, b.detail): b for b in ReconciliationBreak.objects.filter(
        tenant=run.tenant, status=ReconciliationBreak.RESOLVED, account_id__in={f.account_id for f in findings})}
    rows = []
    for f in findings:
        earlier = resolved.get((f.account_id, f.kind, f.detail))
        row = ReconciliationBreak(run=run, tenant=run.tenant, account_id=f.account_id, currency=f.currency,
                                  kind=f.kind, detail=f.detail)
        if earlier is not None:
            row.status, row.resolved_at = ReconciliationBreak.RESOLVED, earlier.resolved_at
            row.resolved_by = f"{earlier.resolved_by} (break {earlier.pk})"
            row.resolution, row.note = earlier.resolution, earlier.note
        rows.append(row)
    ReconciliationBreak.objects.bulk_create(rows)
    under_review = {row.account_id for row in rows if row.account_id and row.resolved_at is None}
    if under_review:
        Account.rows.filter(tenant=run.tenant, id__in=under_review, under_review=False).update(under_review=True)
