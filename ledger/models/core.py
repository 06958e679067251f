"""Money itself: accounts, their append-only entries grouped in balanced transactions, and
holds. Invariants are also enforced in PostgreSQL (migrations 0003, 0006, 0007)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast, Concat

from audit.history import tracked_history
from zentra.ids import new_id

from ..currencies import format_minor

ACCOUNT_TYPES = ["operating", "customer", "merchant", "settlement", "payout", "reserve", "fees", "external"]
SYSTEM_ACCOUNT_TYPES = ["reserve", "settlement", "payout", "fees"]
CLIENT_ACCOUNT_TYPES = [t for t in ACCOUNT_TYPES if t not in SYSTEM_ACCOUNT_TYPES]
DEBIT, CREDIT = "debit", "credit"
# Amounts and balances are PostgreSQL bigints: 0 < amount <= 2^63-1.
MAX_AMOUNT = 2**63 - 1


def new_account_id() -> str:
    return new_id("acct")


# A hot account is one logical account over N physical rows (ARCHITECTURE.md, Hot accounts):
# shard 0 is the logical row itself, shard k its row "<logical id>.s<k>". Ids never hold a dot,
# so an entry's row names its logical account and shard without a lookup; the database checks
# the shape (account_shard_row_id).
SHARD_SEPARATOR = ".s"
MAX_SHARDS = 256


def shard_row_id(logical_id: str, shard: int) -> str:
    return logical_id if shard == 0 else f"{logical_id}{SHARD_SEPARATOR}{shard}"


def logical_account_of(row_id: str) -> tuple[str, int]:
    """(logical account id, shard number) of a physical account row."""
    logical, separator, shard = row_id.partition(SHARD_SEPARATOR)
    if not separator or not shard.isdigit():
        return row_id, 0
    return logical, int(shard)


class LogicalAccounts(models.Manager["Account"]):
    """What the API, the admin and lookups by id see: logical accounts, never their shard rows."""

    def get_queryset(self) -> models.QuerySet[Account]:
        return super().get_queryset().filter(shard_of__isnull=True)


class Account(models.Model):
    """A balance in one currency, owned by one tenant.

    `posted_balance` is signed in the account's normal direction (credit-normal: credits add).
    It is changed only by ledger services, in the same transaction as the entries that explain it.
    """

    ACTIVE, FROZEN, CLOSED = "active", "frozen", "closed"
    STATUS_CHOICES = [(ACTIVE, "Active"), (FROZEN, "Frozen"), (CLOSED, "Closed")]
    TYPE_CHOICES = [(t, t.capitalize()) for t in ACCOUNT_TYPES]
    NORMAL_BALANCE_CHOICES = [(DEBIT, "Debit"), (CREDIT, "Credit")]

    id = models.CharField(primary_key=True, max_length=40, default=new_account_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="accounts")
    customer = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    currency = models.CharField(max_length=3)
    account_type = models.CharField(max_length=20, choices=TYPE_CHOICES)
    normal_balance = models.CharField(max_length=6, choices=NORMAL_BALANCE_CHOICES, default=CREDIT)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=ACTIVE)
    allow_overdraft = models.BooleanField(default=False)
    overdraft_limit = models.BigIntegerField(
        null=True, blank=True, help_text="With allow_overdraft: how far below zero it may go (empty: no limit).")
    is_system = models.BooleanField(default=False,
                                    help_text="Reserve, settlement, payout or fees account of the tenant.")
    # Limits every posting checks, whoever posts (API, intents, operators).
    max_single_debit = models.BigIntegerField(null=True, blank=True, help_text="Largest single debit (minor units).")
    max_daily_debit = models.BigIntegerField(null=True, blank=True,
                                             help_text="Most this account may be debited per UTC day (minor units).")
    posted_balance = models.BigIntegerField(default=0, editable=False)
    # Set by a verification that found a break on this account; debits are refused
    # (409 account_under_review) until an owner resolves its breaks with a reason.
    under_review = models.BooleanField(default=False, editable=False)
    # Head of the account's entry chain: sequence and hash of its latest entry.
    last_sequence = models.BigIntegerField(default=0, editable=False)
    hash_head = models.CharField(max_length=64, blank=True, default="", editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Hot accounts: the logical row carries shard_count (every shard row a copy of it, so a
    # lock of one shard knows its siblings); shard rows point at their logical account.
    shard_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="shard_rows",
                                 editable=False)
    shard = models.PositiveSmallIntegerField(default=0, editable=False)
    shard_count = models.PositiveSmallIntegerField(
        default=1, editable=False,
        help_text="Physical rows this account is spread over (hot accounts); its balance is their sum.")

    objects = LogicalAccounts()
    # Every physical row, shard rows included: verification, checkpoints, period closes.
    rows = models.Manager()

    history = tracked_history(excluded_fields=["last_sequence", "hash_head"])

    class Meta:
        ordering = ["-created_at"]
        base_manager_name = "rows"
        indexes = [
            models.Index(fields=["tenant", "-id"], name="account_tenant_recent"),
            models.Index(fields=["tenant", "customer"], name="account_tenant_customer"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="account_currency_iso_shape"),
            models.CheckConstraint(condition=Q(account_type__in=ACCOUNT_TYPES), name="account_type_known"),
            models.CheckConstraint(condition=Q(normal_balance__in=[DEBIT, CREDIT]),
                                   name="account_normal_balance_known"),
            models.CheckConstraint(condition=Q(status__in=["active", "frozen", "closed"]), name="account_status_known"),
            models.CheckConstraint(condition=Q(overdraft_limit__isnull=True) | Q(overdraft_limit__gte=0),
                                   name="account_overdraft_limit_not_negative"),
            models.CheckConstraint(condition=(Q(max_single_debit__isnull=True) | Q(max_single_debit__gt=0))
                                   & (Q(max_daily_debit__isnull=True) | Q(max_daily_debit__gt=0)),
                                   name="account_debit_limits_positive"),
            # The no-overdraft rule, in the database: a bug in Python hits this, not the money.
            models.CheckConstraint(
                condition=Q(posted_balance__gte=0)
                | (Q(allow_overdraft=True) & (Q(overdraft_limit__isnull=True)
                                              | Q(posted_balance__gte=-models.F("overdraft_limit")))),
                name="account_balance_within_overdraft",
            ),
            models.UniqueConstraint(fields=["tenant", "currency", "account_type"],
                                    condition=Q(is_system=True, shard_of__isnull=True),
                                    name="account_one_system_account_per_type"),
            models.CheckConstraint(condition=Q(shard_count__gte=1) & Q(shard_count__lte=MAX_SHARDS),
                                   name="account_shard_count_in_range"),
            # A shard row is "<logical>.s<k>" with 0 < k < shard_count; a logical row is shard 0.
            models.CheckConstraint(
                condition=(Q(shard_of__isnull=True) & Q(shard=0))
                | (Q(shard_of__isnull=False) & Q(shard__gt=0) & Q(shard__lt=models.F("shard_count"))
                   & Q(id=Concat(models.F("shard_of"), models.Value(SHARD_SEPARATOR),
                                                  Cast(models.F("shard"), models.CharField())))),
                name="account_shard_row_id"),
        ]

    def __str__(self) -> str:
        label = self.name or self.customer or self.account_type
        return f"{label} ({self.currency}, {self.id})"

    @property
    def logical_id(self) -> str:
        return self.shard_of_id or self.id


def new_transaction_id() -> str:
    return new_id("txn")


def new_entry_id() -> str:
    return new_id("ent")


TRANSACTION_KINDS = ["transfer", "reversal", "hold", "capture", "release", "expiry", "settlement", "payout", "fee",
                     "adjustment"]


class LedgerTransaction(models.Model):
    """A balanced set of entries, posted at once. Append-only: a mistake is fixed by a
    reversal that references the original (`reverses`), never by UPDATE or DELETE."""

    id = models.CharField(primary_key=True, max_length=40, default=new_transaction_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="ledger_transactions")
    kind = models.CharField(max_length=20, choices=[(k, k) for k in TRANSACTION_KINDS], default="transfer")
    description = models.CharField(max_length=500, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="reversed_by")
    # For kinds hold, capture, release and expiry: the hold this posting places or resolves.
    # Checked by the composite key txn_hold_same_tenant (migration 0006) alone: see LedgerEntry.
    hold = models.ForeignKey("Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions",
                             db_constraint=False)
    # What caused the posting, by id (pi_..., po_...): payments sit above the ledger, so the
    # ledger names them without a foreign key into their tables.
    payment_intent_id = models.CharField(max_length=40, null=True, blank=True, db_index=True)
    payout_id = models.CharField(max_length=40, null=True, blank=True, db_index=True)
    effective_at = models.DateTimeField()
    created_at = models.DateTimeField()
    source_request_id = models.CharField(max_length=80, blank=True, default="")
    actor = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="txn_tenant_recent"),
            models.Index(fields=["tenant", "kind", "-id"], name="txn_tenant_kind_recent"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=TRANSACTION_KINDS), name="txn_kind_known"),
            models.CheckConstraint(condition=Q(reverses__isnull=True) | Q(kind="reversal"),
                                   name="txn_only_reversals_reverse"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @property
    def status(self) -> str:
        return "posted"


class LedgerEntry(models.Model):
    """One side of a posting on one account.

    `sequence` numbers the account's entries 1, 2, 3...; `balance_after` is the account's
    balance once this entry applied, so statements and as-of balances read without summing.
    `hash` chains the account's entries: HMAC-SHA256 under the ledger key `key_id` of the previous
    hash and the canonical content (ledger/chain.py); `legacy` entries predate the key.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_entry_id, editable=False)
    # No single-column indexes on tenant and account: (account, sequence) and the composite
    # tenant keys of migration 0003 already serve those lookups, and every index costs a posting.
    # No single-column foreign keys either: the composite keys of migration 0003 (account,
    # tenant and currency together; transaction and tenant together) refuse everything these
    # would, and each key is a check per entry at commit, under the accounts' locks (0016).
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False,
                               db_constraint=False)
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries",
                                    db_constraint=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False,
                                db_constraint=False)
    direction = models.CharField(max_length=6, choices=Account.NORMAL_BALANCE_CHOICES)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    sequence = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["account", "-sequence"]
        verbose_name_plural = "ledger entries"
        indexes = [
            # as-of balances: the last entry of the account at or before an instant
            models.Index(fields=["account", "created_at", "sequence"], name="entry_account_time"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["account", "sequence"], name="entry_sequence_unique_per_account"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="entry_amount_positive"),
            models.CheckConstraint(condition=Q(direction__in=[DEBIT, CREDIT]), name="entry_direction_known"),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="entry_sequence_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {format_minor(self.amount, self.currency)} on {self.account_id} #{self.sequence}"


def new_hold_id() -> str:
    return new_id("hold")


class Hold(models.Model):
    """Funds reserved on an account: posted from the account to the tenant's reserve account,
    then captured (to a destination), released or expired (back to the account), each its own
    ledger transaction (LedgerTransaction.hold points here).

    A hold past `expires_at` no longer counts, whatever its stored status: reads show it as
    available and captures are refused; the expiry job only makes the ledger catch up.
    """

    ACTIVE, CAPTURED, RELEASED, EXPIRED = "active", "captured", "released", "expired"
    STATUS_CHOICES = [(s, s.capitalize()) for s in (ACTIVE, CAPTURED, RELEASED, EXPIRED)]

    id = models.CharField(primary_key=True, max_length=40, default=new_hold_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="holds")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    reserve_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    captured_amount = models.BigIntegerField(default=0)
    released_amount = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=ACTIVE)
    expires_at = models.DateTimeField()
    reference = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    source_request_id = models.CharField(max_length=80, blank=True, default="")
    created_by = models.CharField(max_length=200, blank=True, default="")
    resolved_by = models.CharField(max_length=200, blank=True, default="")
    resolution_reason = models.CharField(max_length=500, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    history = tracked_history()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="hold_tenant_recent"),
            # balances (active holds of an account) and the expiry job (active holds due)
            models.Index(fields=["account", "expires_at"], condition=Q(status="active"), name="hold_active_account"),
            models.Index(fields=["expires_at"], condition=Q(status="active"), name="hold_active_due"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive"),
            models.CheckConstraint(condition=Q(captured_amount__gte=0) & Q(released_amount__gte=0),
                                   name="hold_resolved_amounts_not_negative"),
            models.CheckConstraint(
                condition=Q(captured_amount__lte=models.F("amount") - models.F("released_amount")),
                name="hold_resolved_within_amount"),
            # active: something remains; captured/released/expired: nothing remains
            models.CheckConstraint(
                condition=(Q(status="active") & Q(captured_amount__lt=models.F("amount") - models.F("released_amount")))
                | (Q(status__in=["captured", "released", "expired"])
                   & Q(captured_amount=models.F("amount") - models.F("released_amount"))),
                name="hold_status_matches_amounts"),
            models.CheckConstraint(condition=Q(status__in=["active", "captured", "released", "expired"]),
                                   name="hold_status_known"),
            models.CheckConstraint(condition=Q(status="active") | Q(resolved_at__isnull=False),
                                   name="hold_resolution_dated"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {format_minor(self.amount, self.currency)} {self.status}"

    @property
    def remaining(self) -> int:
        return self.amount - self.captured_amount - self.released_amount
