"""Payment intents and what decides and carries them: policy rules and decisions, providers and
their routes (with a circuit breaker), attempts, inbound provider events, payouts."""

from django.db import models
from django.db.models import Q

from audit.history import tracked_history
from ledger.currencies import format_minor
from ledger.models import Account, Hold
from zentra.ids import new_id


def new_provider_id() -> str:
    return new_id("prv")


def new_route_id() -> str:
    return new_id("rte")


def new_rule_id() -> str:
    return new_id("pol")


def new_intent_id() -> str:
    return new_id("pi")


def new_payout_id() -> str:
    return new_id("po")


class Provider(models.Model):
    """A payment provider the tenant routes to. Built-in sandbox providers behave as their
    mode says (approve, decline, time out) and can be put in an outage from the admin."""

    APPROVE, DECLINE, TIMEOUT = "approve", "decline", "timeout"

    id = models.CharField(primary_key=True, max_length=40, default=new_provider_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="providers")
    name = models.SlugField(max_length=63)
    kind = models.CharField(max_length=20, default="sandbox", choices=[("sandbox", "Sandbox")])
    mode = models.CharField(max_length=10, default=APPROVE,
                            choices=[(APPROVE, "Approve"), (DECLINE, "Decline"), (TIMEOUT, "Time out")])
    outage = models.BooleanField(default=False, help_text="Refuse every request, as a provider that is down.")
    # The sandbox's settlement report can be told to misbehave, so breaks of every kind can be
    # produced on purpose (payments/services/settlement/sandbox_report.py).
    report_faults = models.JSONField(default=list, blank=True, help_text=(
        'Faults in the sandbox\'s settlement report: any of "drop", "change_amount", "change_currency", '
        '"duplicate", "unknown_reference" (each applied to one line).'))
    settle_delay_seconds = models.PositiveIntegerField(default=2, help_text="How long the sandbox takes to settle.")
    # Signs the provider's events to /v1/providers/{id}/events (HMAC-SHA256).
    secret = models.CharField(max_length=100, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    history = tracked_history(excluded_fields=["secret"])

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="provider_name_unique_per_tenant")]

    def __str__(self) -> str:
        return f"{self.name} ({self.mode}{', outage' if self.outage else ''})"


class ProviderRoute(models.Model):
    """A way to carry a payment: rail, provider, priority, currencies. A route that fails
    `failure_threshold` times in a row is down until `down_until` (the circuit breaker)."""

    id = models.CharField(primary_key=True, max_length=40, default=new_route_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="provider_routes")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="routes")
    rail = models.CharField(max_length=30, default="card")
    priority = models.PositiveIntegerField(default=100, help_text="Lower goes first.")
    currencies = models.JSONField(default=list, help_text='e.g. ["USD", "EUR"]; empty: every currency')
    enabled = models.BooleanField(default=True)
    failure_threshold = models.PositiveIntegerField(default=3)
    cooldown_seconds = models.PositiveIntegerField(default=60)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    down_until = models.DateTimeField(null=True, blank=True, editable=False)

    history = tracked_history()

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return f"{self.rail} via {self.provider.name} (priority {self.priority})"


class PolicyRule(models.Model):
    """One rule of the tenant's policy, evaluated in a fixed order of kinds (then position)."""

    AMOUNT_LIMIT, VELOCITY_ACCOUNT, VELOCITY_CUSTOMER = "amount_limit", "velocity_account", "velocity_customer"
    RISK_NEW_ACCOUNT, ROUTING = "risk_new_account", "routing"
    KIND_ORDER = [AMOUNT_LIMIT, VELOCITY_ACCOUNT, VELOCITY_CUSTOMER, RISK_NEW_ACCOUNT, ROUTING]

    id = models.CharField(primary_key=True, max_length=40, default=new_rule_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="policy_rules")
    kind = models.CharField(max_length=30, choices=[(k, k.replace("_", " ")) for k in KIND_ORDER])
    position = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    currency = models.CharField(max_length=3, blank=True, default="", help_text="Empty: every currency.")
    rail = models.CharField(max_length=30, blank=True, default="", help_text="Empty: every rail.")
    params = models.JSONField(default=dict, blank=True, help_text=(
        'amount_limit: {"min": 1, "max": 500000}; velocity_*: {"max_per_day": 1000000}; '
        'risk_new_account: {"amount_above": 100000, "younger_than_days": 7}; '
        'routing: {"routes": ["rte_..."], "amount_max": null}'))
    description = models.CharField(max_length=500, blank=True, default="")

    history = tracked_history()

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.CheckConstraint(condition=Q(kind__in=[
            "amount_limit", "velocity_account", "velocity_customer", "risk_new_account", "routing"]),
            name="policy_rule_kind_known")]

    def __str__(self) -> str:
        return f"{self.kind} {self.description or self.params}"


class PaymentIntent(models.Model):
    REQUIRES_CONFIRMATION, REQUIRES_REVIEW, PROCESSING = "requires_confirmation", "requires_review", "processing"
    SUCCEEDED, FAILED, CANCELED = "succeeded", "failed", "canceled"
    STATUSES = [REQUIRES_CONFIRMATION, REQUIRES_REVIEW, PROCESSING, SUCCEEDED, FAILED, CANCELED]

    id = models.CharField(primary_key=True, max_length=40, default=new_intent_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="payment_intents")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    source_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    destination_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    rail = models.CharField(max_length=30, blank=True, default="")
    status = models.CharField(max_length=30, choices=[(s, s) for s in STATUSES], default=REQUIRES_CONFIRMATION)
    hold = models.ForeignKey(Hold, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    route = models.ForeignKey(ProviderRoute, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    route_plan = models.JSONField(default=list, blank=True, help_text="Route ids in the order the policy chose.")
    provider_reference = models.CharField(max_length=100, blank=True, default="")
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    source_request_id = models.CharField(max_length=80, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    history = tracked_history()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="intent_tenant_recent"),
            models.Index(fields=["tenant", "status"], name="intent_tenant_status"),
            models.Index(fields=["source_account", "created_at"], name="intent_source_day"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="intent_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=[
                "requires_confirmation", "requires_review", "processing", "succeeded", "failed", "canceled"]),
                name="intent_status_known"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {format_minor(self.amount, self.currency)} {self.status}"


class IntentTransition(models.Model):
    intent = models.ForeignKey(PaymentIntent, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=30, blank=True, default="")
    to_status = models.CharField(max_length=30)
    at = models.DateTimeField()
    actor = models.CharField(max_length=200)
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["intent", "at", "id"]


class PolicyDecision(models.Model):
    """Evidence of one rule evaluated for one intent. Written on the evidence connection, so a
    denial that rolls back the confirmation still leaves its reasons."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    tenant_id = models.CharField(max_length=40, db_index=True)
    intent_id = models.CharField(max_length=40, db_index=True)
    rule_id = models.CharField(max_length=40, blank=True, default="")
    rule_kind = models.CharField(max_length=30)
    inputs = models.JSONField(default=dict)
    outcome = models.CharField(max_length=10, choices=[(o, o) for o in ("allow", "deny", "review", "route")])
    reason = models.CharField(max_length=500)
    request_id = models.CharField(max_length=80, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.rule_kind}: {self.outcome}"


class ProviderAttempt(models.Model):
    intent = models.ForeignKey(PaymentIntent, on_delete=models.PROTECT, related_name="provider_attempts")
    route = models.ForeignKey(ProviderRoute, on_delete=models.PROTECT, related_name="attempts")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="attempts")
    request = models.JSONField(default=dict)
    outcome = models.CharField(max_length=20)  # accepted, declined, error, timeout, route_down
    reference = models.CharField(max_length=100, blank=True, default="")
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["intent", "id"]


class ProviderEvent(models.Model):
    """An inbound provider event, kept once: the provider's event id is unique per provider,
    so a replay finds it and changes nothing."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="events")
    external_id = models.CharField(max_length=100)
    type = models.CharField(max_length=50)
    payload = models.JSONField()
    intent = models.ForeignKey(PaymentIntent, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="provider_events")
    outcome = models.CharField(max_length=200, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["provider", "external_id"], name="provider_event_once")]


class Payout(models.Model):
    PENDING, PAID, FAILED = "pending", "paid", "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_payout_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="payouts")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="payouts")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, default=PENDING,
                              choices=[(PENDING, "Pending"), (PAID, "Paid"), (FAILED, "Failed")])
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.PROTECT, related_name="payouts")
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    # The provider's own reference for the payout, once it paid it (its settlement report names it).
    provider_reference = models.CharField(max_length=100, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    source_request_id = models.CharField(max_length=80, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    history = tracked_history()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=["pending", "paid", "failed"]), name="payout_status_known"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {format_minor(self.amount, self.currency)} {self.status}"


# --- Reconciliation with what providers report (payments/services/settlement/) -------------

MOVEMENT_TYPES = ["charge", "refund", "dispute", "payout", "fee", "adjustment"]


def new_settlement_report_id() -> str:
    return new_id("srp")


class SettlementReport(models.Model):
    """A provider's settlement report: what it booked over a period, with its fees, matched line
    by line against the ledger's own records (SettlementRecord). Its lines are kept as evidence;
    the same file (by SHA-256) is accepted once per provider."""

    MATCHING, MATCHED, FAILED = "matching", "matched", "failed"
    UPLOAD, FETCHED = "upload", "fetched"

    id = models.CharField(primary_key=True, max_length=40, default=new_settlement_report_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="settlement_reports")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="settlement_reports")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    sha256 = models.CharField(max_length=64)
    source = models.CharField(max_length=10, default=UPLOAD, choices=[(UPLOAD, "uploaded"), (FETCHED, "fetched")])
    status = models.CharField(max_length=10, default=MATCHING,
                              choices=[(s, s) for s in (MATCHING, MATCHED, FAILED)])
    lines = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    breaks = models.PositiveIntegerField(default=0)
    fees_posted = models.BigIntegerField(default=0, help_text="Sum of the report's fees, in minor units.")
    fee_transaction_id = models.CharField(max_length=40, blank=True, default="")
    run_id = models.CharField(max_length=40, blank=True, default="",
                              help_text="The reconciliation run whose breaks this report's matching opened.")
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    uploaded_by = models.CharField(max_length=200)
    source_request_id = models.CharField(max_length=80, blank=True, default="")
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    history = tracked_history()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="report_tenant_recent")]
        constraints = [
            models.UniqueConstraint(fields=["provider", "sha256"], name="report_once_per_provider"),
            models.CheckConstraint(condition=Q(period_end__gt=models.F("period_start")), name="report_period_forward"),
            models.CheckConstraint(condition=Q(status__in=["matching", "matched", "failed"]),
                                   name="report_status_known"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.provider_id} {self.period_start:%Y-%m-%d}"


class SettlementLine(models.Model):
    """One line of a report, as the provider wrote it, and what matching found for it."""

    MATCHED = "matched"

    report = models.ForeignKey(SettlementReport, on_delete=models.PROTECT, related_name="report_lines")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    line_no = models.PositiveIntegerField(help_text="Line in the file (the header is line 1).")
    line_id = models.CharField(max_length=100)
    type = models.CharField(max_length=12)
    provider_reference = models.CharField(max_length=100)
    currency = models.CharField(max_length=3)
    gross = models.BigIntegerField()
    fee = models.BigIntegerField()
    net = models.BigIntegerField()
    booked_at = models.DateTimeField()
    # Empty until matched: "matched" or the kind of break the line opened.
    outcome = models.CharField(max_length=30, blank=True, default="")
    record = models.ForeignKey("SettlementRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["report", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["report", "line_no"], name="line_once_per_report"),
            models.CheckConstraint(condition=Q(fee__gte=0) & Q(net=models.F("gross") - models.F("fee")),
                                   name="line_net_is_gross_minus_fee"),
        ]


class SettlementRecord(models.Model):
    """The ledger's record of one money movement a provider books: written in the transaction
    that posts it (a settled charge, a paid payout), so every settled provider event is matched
    to its intent the moment it arrives. A report's line later confirms it (`report`)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+", db_index=False)
    type = models.CharField(max_length=12)
    provider_reference = models.CharField(max_length=100)
    currency = models.CharField(max_length=3)
    gross = models.BigIntegerField(help_text="Signed from the tenant's side: charges positive, payouts negative.")
    settled_at = models.DateTimeField(help_text="When the provider settled it: the period it belongs to.")
    payment_intent = models.ForeignKey(PaymentIntent, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    payout = models.ForeignKey(Payout, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    transaction_id = models.CharField(max_length=40, blank=True, default="")
    report = models.ForeignKey(SettlementReport, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+", help_text="The report whose line confirmed it.")

    class Meta:
        ordering = ["-settled_at"]
        indexes = [models.Index(fields=["tenant", "provider", "settled_at"], name="record_awaiting_report",
                                condition=Q(report__isnull=True))]
        constraints = [models.UniqueConstraint(fields=["provider", "type", "provider_reference"],
                                               name="record_once_per_reference")]
