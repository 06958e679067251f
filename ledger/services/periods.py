"""Period close (docs/periods.md): after `ledger_period_close(until=T)` no posting of the tenant
may take effect before T, and what the ledger said at T is kept and signed.

One durable transaction:
1. Take the tenant's period lock (ledger/locks.py), exclusively. Every ledger transaction INSERT
   takes the same key shared, in a trigger (migration 0013), and holds it to its commit. So the
   close first waits for the postings already writing to commit, and every posting that writes
   after this point waits for the close to commit and is then refused if it is back-dated. A
   posting can therefore never slip in before T unnoticed: either it is in the figures below, or
   it is refused (422 period_closed, by the service here and by that trigger).
2. Check `until`: not in the future (400), after the latest close (409).
3. Read the trial balance (debits and credits per currency of every entry whose transaction is
   effective before T) and each account's closing line: its balance over those entries and the
   chain head (sequence, hash) of the last of them.
4. Take a checkpoint (reason `period_close`): every account head, signed with the Ed25519 key.
5. Sign the period document (period_document: the closing-balances CSV without its signature
   line) with the same key, and keep the period, its lines and the signature (append-only).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from tenants.models import Tenant
from zentra.errors import InvalidStateTransition, ValidationFailed
from zentra.keys import SIGNING_ALGORITHM, signing_keys
from zentra.shapes import iso

from ..errors import PeriodClosed
from ..locks import lock_tenant_periods
from ..models import Account, LedgerEntry, LedgerPeriod, LedgerPeriodBalance, LedgerTransaction
from .checkpoints import checkpoint_take

# The constraint name the trigger of migration 0013 gives its refusal.
PERIOD_OPEN_CONSTRAINT = "txn_period_open"
CSV_HEADER = "account,currency,closing_balance,sequence,chain_hash"
SIGNATURE_PREFIX = "# signature "

_TRIAL_BALANCE = f"""
    SELECT entry.currency,
           coalesce(sum(entry.amount) FILTER (WHERE entry.direction = 'debit'), 0),
           coalesce(sum(entry.amount) FILTER (WHERE entry.direction = 'credit'), 0)
      FROM {LedgerEntry._meta.db_table} AS entry
      JOIN {LedgerTransaction._meta.db_table} AS txn ON txn.id = entry.transaction_id
     WHERE entry.tenant_id = %(tenant)s AND txn.tenant_id = %(tenant)s AND txn.effective_at < %(until)s
     GROUP BY entry.currency ORDER BY entry.currency"""

# Every account of the tenant, with its entries effective before `until`: the balance (signed in
# the account's normal direction) and the last of them in chain order, whose hash pins the chain
# up to it. An account without such entries closes at 0, sequence 0, no hash.
_CLOSING_LINES = f"""
    WITH line AS (
        SELECT entry.account_id,
               sum(CASE WHEN entry.direction = account.normal_balance THEN entry.amount ELSE -entry.amount END)
                   AS balance,
               max(entry.sequence) AS sequence
          FROM {LedgerEntry._meta.db_table} AS entry
          JOIN {LedgerTransaction._meta.db_table} AS txn ON txn.id = entry.transaction_id
          JOIN {Account._meta.db_table} AS account ON account.id = entry.account_id
         WHERE entry.tenant_id = %(tenant)s AND txn.effective_at < %(until)s
         GROUP BY entry.account_id)
    SELECT account.id, account.currency, coalesce(line.balance, 0), coalesce(line.sequence, 0),
           coalesce(head.hash, '')
      FROM {Account._meta.db_table} AS account
      LEFT JOIN line ON line.account_id = account.id
      LEFT JOIN {LedgerEntry._meta.db_table} AS head ON head.account_id = account.id AND head.sequence = line.sequence
     WHERE account.tenant_id = %(tenant)s
     ORDER BY account.id"""


def period_refuse_closed(*, tenant_id: str, effective_at: datetime) -> None:
    """PeriodClosed when `effective_at` falls before the tenant's latest close. The posting
    service asks only for postings given an explicit `effective_at` (one at "now" is after every
    close); the trigger of migration 0013 checks every one, under the period lock."""
    latest = latest_close(tenant_id)
    if latest is not None and effective_at < latest.closed_until:
        raise period_closed_error(effective_at, latest)


def period_closed_error(effective_at: datetime | None, latest: LedgerPeriod | None) -> PeriodClosed:
    when = f"effective at {iso(effective_at)}" if effective_at is not None else "back-dated"
    closed = f"{iso(latest.closed_until)} ({latest.id})" if latest is not None else "its latest close"
    return PeriodClosed(f"The posting is {when}, before the ledger's close at {closed}; closed periods take no "
                        "new entries: post the correction effective in the open period",
                        errors=[{"field": "effective_at", "message": "Before the latest period close."}])


def latest_close(tenant_id: str) -> LedgerPeriod | None:
    return LedgerPeriod.objects.filter(tenant_id=tenant_id).order_by("-closed_until").first()


def ledger_period_close(*, tenant: Tenant, until: datetime, actor: Actor) -> LedgerPeriod:
    """Close the tenant's ledger until `until` (aware, not in the future, after the latest close)."""
    if until.tzinfo is None:
        raise ValidationFailed("until must be a timestamp with a time zone",
                               errors=[{"field": "until", "message": "Timestamp with a time zone expected."}])
    until = until.astimezone(UTC)
    if until > timezone.now():
        raise ValidationFailed(f"until {iso(until)} is in the future: only the past can be closed",
                               errors=[{"field": "until", "message": "Must not be in the future."}])
    keys = signing_keys()
    with transaction.atomic(durable=True), acting_as(actor):
        lock_tenant_periods(tenant_id=tenant.id)
        latest = latest_close(tenant.id)
        if latest is not None and until <= latest.closed_until:
            raise InvalidStateTransition(
                f"The ledger is already closed until {iso(latest.closed_until)} ({latest.id}); a new close must "
                f"come after it, not at {iso(until)}")
        with connection.cursor() as cursor:
            cursor.execute(_TRIAL_BALANCE, {"tenant": tenant.id, "until": until})
            trial_balance = [{"currency": currency, "debits": int(debits), "credits": int(credits)}
                             for currency, debits, credits in cursor.fetchall()]
            cursor.execute(_CLOSING_LINES, {"tenant": tenant.id, "until": until})
            lines = [(account_id, currency, int(balance), int(sequence), chain_hash)
                     for account_id, currency, balance, sequence, chain_hash in cursor.fetchall()]
        checkpoint = checkpoint_take(tenant=tenant, reason="period_close", actor=actor)
        period = LedgerPeriod(tenant=tenant, closed_until=until, closed_by=str(actor), checkpoint=checkpoint,
                              trial_balance=trial_balance, accounts=len(lines), kid=keys.kid,
                              created_at=timezone.now())
        document = period_document(period, lines)
        period.digest = hashlib.sha256(document).hexdigest()
        period.signature = keys.sign(document)
        period.save(force_insert=True)
        LedgerPeriodBalance.objects.bulk_create([
            LedgerPeriodBalance(tenant=tenant, period=period, account_id=account_id, currency=currency,
                                balance=balance, sequence=sequence, hash=chain_hash)
            for account_id, currency, balance, sequence, chain_hash in lines], batch_size=5000)
    return period


# --- the signed document: the closing-balances CSV ----------------------------------------------------

def period_lines(period: LedgerPeriod) -> list[tuple[str, str, int, int, str]]:
    return list(period.balances.order_by("account_id").values_list("account_id", "currency", "balance", "sequence",
                                                                   "hash"))


def period_document(period: LedgerPeriod, lines: list[tuple[str, str, int, int, str]]) -> bytes:
    """The exact bytes that are signed, rebuilt from the stored rows to serve and to verify: the
    CSV of docs/periods.md up to (not including) its signature line. Every value is an id, a
    currency code, an integer, a timestamp or hex, so no field needs quoting."""
    checkpoint = period.checkpoint
    out = [f"# ledger_period={period.id} tenant={period.tenant_id} closed_until={iso(period.closed_until)} "
           f"created_at={iso(period.created_at)} accounts={period.accounts}",
           f"# checkpoint={checkpoint.id} checkpoint_kid={checkpoint.kid} checkpoint_digest={checkpoint.digest}"]
    out += [f"# trial_balance currency={row['currency']} debits={row['debits']} credits={row['credits']}"
            for row in period.trial_balance]
    out.append(CSV_HEADER)
    out += [f"{account_id},{currency},{balance},{sequence},{chain_hash}"
            for account_id, currency, balance, sequence, chain_hash in sorted(lines)]
    return ("\n".join(out) + "\n").encode()


def period_signature_line(period: LedgerPeriod) -> str:
    return f"{SIGNATURE_PREFIX}algorithm={SIGNING_ALGORITHM} kid={period.kid} value={period.signature}\n"


def period_csv(period: LedgerPeriod) -> bytes:
    """The closing-balances CSV as served: the signed document, then its signature line."""
    return period_document(period, period_lines(period)) + period_signature_line(period).encode()


def period_signature_valid(period: LedgerPeriod) -> bool:
    document = period_document(period, period_lines(period))
    return (hashlib.sha256(document).hexdigest() == period.digest
            and signing_keys().verify(period.kid, document, period.signature))
