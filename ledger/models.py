"""The ledger's data: accounts, their append-only entries grouped in balanced transactions, holds,
and the runs and breaks of ledger verification. Invariants are also enforced in PostgreSQL
(migrations 0003, 0006, 0007)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from audit.history import tracked_history
from zentra.ids import new_id

from .currencies import format_minor

ACCOUNT_TYPES = ["operating", "customer", "merchant", "settlement", "payout", "reserve", "fees", "external"]
SYSTEM_ACCOUNT_TYPES = ["reserve", "settlement", "payout", "fees"]
CLIENT_ACCOUNT_TYPES = [t for t in ACCOUNT_TYPES if t not in SYSTEM_ACCOUNT_TYPES]
DEBIT, CREDIT = "debit", "credit"
# Amounts and balances are PostgreSQL bigints: 0 < amount <= 2^63-1.
MAX_AMOUNT = 2**63 - 1


def new_account_id() -> str:
    return new_id("acct")


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

    history = tracked_history(excluded_fields=["last_sequence", "hash_head"])

    class Meta:
        ordering = ["-created_at"]
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
            models.UniqueConstraint(fields=["tenant", "currency", "account_type"], condition=Q(is_system=True),
                                    name="account_one_system_account_per_type"),
        ]

    def __str__(self) -> str:
        label = self.name or self.customer or self.account_type
        return f"{label} ({self.currency}, {self.id})"


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
    hold = models.ForeignKey("Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions")
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
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False)
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


def new_reconciliation_id() -> str:
    return new_id("rec")


class ReconciliationRun(models.Model):
    """One verification of a tenant's ledger: balances, sequences, hash chain, trial balance."""

    RUNNING, OK, BROKEN = "running", "ok", "broken"

    id = models.CharField(primary_key=True, max_length=40, default=new_reconciliation_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="reconciliation_runs")
    status = models.CharField(max_length=10, choices=[(s, s) for s in (RUNNING, OK, BROKEN)], default=RUNNING)
    trigger = models.CharField(max_length=20, default="command")
    actor = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    accounts_checked = models.PositiveIntegerField(default=0)
    entries_checked = models.BigIntegerField(default=0)
    breaks_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["tenant", "-started_at"], name="recon_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


def new_break_id() -> str:
    return new_id("brk")


BREAK_RESOLUTIONS = ["false_positive", "provider_claim", "adjusting_posting"]
SETTLEMENT_BREAK_KINDS = ["missing_in_ledger", "missing_in_report", "amount_mismatch", "currency_mismatch",
                          "duplicate_line"]


class ReconciliationBreak(models.Model):
    """Something two records disagree on, worked until someone resolves it: the one break model
    for the ledger's own verification (a balance, a sequence, a chain link; `account_id`) and for
    settlement reports matched against the ledger (`report_id`, `line_id`, `provider_reference`,
    `expected` by the ledger, `actual` by the provider). Assignment, comments and the resolution
    are each in its history (ledger.services.breaks)."""

    OPEN, RESOLVED = "open", "resolved"

    id = models.CharField(primary_key=True, max_length=40, default=new_break_id, editable=False)
    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="breaks")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    account_id = models.CharField(max_length=40, blank=True, default="")
    currency = models.CharField(max_length=3, blank=True, default="")
    kind = models.CharField(max_length=40)
    detail = models.TextField()
    status = models.CharField(max_length=10, default=OPEN, choices=[(OPEN, "open"), (RESOLVED, "resolved")])
    # From a settlement report (ids as plain text: the report lives in payments, above the ledger).
    report_id = models.CharField(max_length=40, blank=True, default="")
    line_id = models.CharField(max_length=100, blank=True, default="")
    provider_reference = models.CharField(max_length=100, blank=True, default="")
    expected = models.BigIntegerField(null=True, blank=True, help_text="What the ledger says (minor units).")
    actual = models.BigIntegerField(null=True, blank=True, help_text="What the provider says (minor units).")
    assigned_to = models.CharField(max_length=200, blank=True, default="")
    assigned_to_label = models.CharField(max_length=200, blank=True, default="")
    # A break stays open until someone resolves it (ledger.services.breaks): how, and why.
    resolution = models.CharField(max_length=20, blank=True, default="",
                                  choices=[(r, r.replace("_", " ")) for r in BREAK_RESOLUTIONS])
    note = models.TextField(blank=True, default="")
    adjustment_transaction_id = models.CharField(max_length=40, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    history = tracked_history()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account_id"], condition=Q(resolved_at__isnull=True),
                                name="break_open_by_account"),
                   models.Index(fields=["tenant", "status", "-id"], name="break_tenant_status"),
                   models.Index(fields=["report_id"], condition=~Q(report_id=""), name="break_by_report")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["open", "resolved"]), name="break_status_known"),
            # Resolved means when, by whom, and how; open means none of them.
            models.CheckConstraint(
                condition=(Q(status="open", resolved_at__isnull=True, resolved_by="")
                           | (Q(status="resolved", resolved_at__isnull=False) & ~Q(resolved_by="") & ~Q(note=""))),
                name="break_resolution_complete"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.provider_reference or self.account_id or self.currency}"


class BreakComment(models.Model):
    """A note on a break while it is worked (append-only)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    reconciliation_break = models.ForeignKey(ReconciliationBreak, on_delete=models.PROTECT, related_name="comments")
    author = models.CharField(max_length=200)
    author_label = models.CharField(max_length=200, blank=True, default="")
    text = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["reconciliation_break", "id"]


def new_checkpoint_id() -> str:
    return new_id("chk")


class LedgerCheckpoint(models.Model):
    """Every account head of a tenant at one instant, signed with the service's Ed25519 key.

    Verification checks each account's chain against its head in the latest checkpoint, so even
    someone holding the ledger key cannot rewrite history before it unnoticed. Append-only
    (migration 0012)."""

    REASONS = ["daily", "period_close", "on_demand", "key_introduced"]

    id = models.CharField(primary_key=True, max_length=40, default=new_checkpoint_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=20, choices=[(r, r) for r in REASONS])
    actor = models.CharField(max_length=200)
    kid = models.CharField(max_length=16, help_text="The signing key (GET /v1/signing_keys).")
    ledger_key_id = models.CharField(max_length=16, help_text="The ledger key current when it was taken.")
    accounts = models.PositiveIntegerField()
    digest = models.CharField(max_length=64, help_text="SHA-256 of the signed document.")
    signature = models.TextField(help_text="Base64 Ed25519 signature of the signed document.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="checkpoint_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.id} ({self.reason})"


class CheckpointHead(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    checkpoint = models.ForeignKey(LedgerCheckpoint, on_delete=models.PROTECT, related_name="heads")
    account_id = models.CharField(max_length=40)
    sequence = models.BigIntegerField()
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["account_id"]
        constraints = [models.UniqueConstraint(fields=["checkpoint", "account_id"], name="checkpoint_head_unique")]


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


def new_period_id() -> str:
    return new_id("per")


class LedgerPeriod(models.Model):
    """A closed ledger period of a tenant: no posting may take effect before `closed_until` any
    more (ledger.services.periods, and a trigger in migration 0013).

    Kept with it: the trial balance per currency of every entry effective before `closed_until`,
    the closing balance and chain head of every account (LedgerPeriodBalance), the checkpoint
    taken at the close (reason `period_close`, signing every account head), and an Ed25519
    signature over the period document, which covers the closing balances too. Append-only."""

    id = models.CharField(primary_key=True, max_length=40, default=new_period_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    closed_until = models.DateTimeField(help_text="Postings effective before this instant are refused.")
    closed_by = models.CharField(max_length=200)
    checkpoint = models.ForeignKey(LedgerCheckpoint, on_delete=models.PROTECT, related_name="+")
    # [{"currency": "USD", "debits": n, "credits": n}, ...], by currency.
    trial_balance = models.JSONField(default=list)
    accounts = models.PositiveIntegerField()
    kid = models.CharField(max_length=16, help_text="The signing key (GET /v1/signing_keys).")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the signed period document.")
    signature = models.TextField(help_text="Base64 Ed25519 signature of the period document.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="period_tenant_recent")]
        constraints = [
            # Its index also finds a tenant's latest close, which every posting's trigger reads.
            models.UniqueConstraint(fields=["tenant", "closed_until"], name="period_one_close_per_instant"),
        ]

    def __str__(self) -> str:
        return f"{self.id} (until {self.closed_until:%Y-%m-%d %H:%M:%S})"


class LedgerPeriodBalance(models.Model):
    """One account's closing line of a period: its balance over the entries effective before the
    period's `closed_until`, and the chain head (sequence, hash) of the last of them."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    period = models.ForeignKey(LedgerPeriod, on_delete=models.PROTECT, related_name="balances")
    account_id = models.CharField(max_length=40)
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField()
    sequence = models.BigIntegerField()
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["account_id"]
        constraints = [models.UniqueConstraint(fields=["period", "account_id"], name="period_balance_unique")]
