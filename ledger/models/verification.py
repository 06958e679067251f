"""What checks the money and fixes its past: the runs and breaks of reconciliation (the
ledger's own verification and providers' settlement reports) with their comments, signed
checkpoints of every account head, and closed periods with their closing balances."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from audit.history import tracked_history
from zentra.ids import new_id


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
