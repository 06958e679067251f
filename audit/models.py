from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q

from audit.history import tracked_history
from zentra.ids import new_id

# Refusals of callers who proved no identity (no valid API key or signature) cost them nothing,
# so they cannot each have a row of their own: repeats within one window (same client address,
# same action or route, same reason) are counted on the first one's row by one INSERT ... ON
# CONFLICT on `repeat_key` (audit/services/evidence.py). Every other row is written once, with
# no repeat_key and a repeat_count of 1.
_REPEAT_KEY_HELP = "On counted rows: a digest of what makes two refusals the same, and of their window."
_REPEAT_COUNT_HELP = "How many times this was seen in its window (1 unless counted)."
_ADDRESS_HELP = "The caller's address (REMOTE_ADDR, or X-Forwarded-For behind ZENTRA_TRUSTED_PROXIES)."


class AccessDenial(models.Model):
    """A refused action: who tried what on which target, and under which tenant and role.

    Identifiers are stored as text, without foreign keys: the row is written on the
    evidence connection, which must not wait on (or roll back with) the refused request.
    A counted row (see above) keeps the first attempt's actor, target and request id.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=200)
    actor_label = models.CharField(max_length=200, blank=True, default="")
    tenant_id = models.CharField(max_length=40, blank=True, default="", db_index=True,
                                 help_text="The tenant the actor was acting for, when it was one.")
    # Every tenant the actor belongs to (an operator may belong to several): each of their
    # compliance reviewers sees the refusal.
    actor_tenant_ids = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    role = models.CharField(max_length=100, blank=True, default="")
    action = models.CharField(max_length=200)
    target = models.CharField(max_length=200, blank=True, default="")
    target_tenant_id = models.CharField(max_length=40, blank=True, default="", db_index=True,
                                        help_text="The tenant that owns the target, when it exists.")
    reason = models.CharField(max_length=500, blank=True, default="")
    request_id = models.CharField(max_length=80, blank=True, default="", db_index=True)
    client_address = models.GenericIPAddressField(null=True, blank=True, help_text=_ADDRESS_HELP)
    repeat_key = models.CharField(max_length=64, null=True, blank=True, help_text=_REPEAT_KEY_HELP)
    repeat_count = models.PositiveIntegerField(default=1, help_text=_REPEAT_COUNT_HELP)
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="The last repeat, on counted rows.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant_id", "-created_at"], name="denial_tenant_time"),
                   GinIndex(fields=["actor_tenant_ids"], name="denial_actor_tenants")]
        # Partial: only counted rows are in it, so it stays small however many rows are written once.
        constraints = [models.UniqueConstraint(fields=["repeat_key"], condition=Q(repeat_key__isnull=False),
                                               name="denial_repeat_key")]

    def __str__(self) -> str:
        return f"{self.actor} denied {self.action} {self.target}"


class RequestRecord(models.Model):
    """One API call: the evidence of who called what, for which tenant, and how it ended.

    Calls refused before an API key admitted them, and calls over their budget (429), are
    counted per client address, route and status instead (see above); a counted row keeps the
    first call's ids."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The server's id (req_...), unique per call: the key of the call's evidence.
    request_id = models.CharField(max_length=80, db_index=True)
    # The client's own X-Request-Id, kept beside the server's id, never in its place.
    client_request_id = models.CharField(max_length=64, blank=True, default="")
    tenant_id = models.CharField(max_length=40, blank=True, default="")
    actor = models.CharField(max_length=200, blank=True, default="")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    idempotent_replay = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField()
    client_address = models.GenericIPAddressField(null=True, blank=True, help_text=_ADDRESS_HELP)
    repeat_key = models.CharField(max_length=64, null=True, blank=True, help_text=_REPEAT_KEY_HELP)
    repeat_count = models.PositiveIntegerField(default=1, help_text=_REPEAT_COUNT_HELP)
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="The last repeat, on counted rows.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant_id", "-created_at"], name="request_tenant_time"),
                   # Operators look up the id a client quotes; most calls send none.
                   models.Index(fields=["client_request_id"], name="request_client_id",
                                condition=~Q(client_request_id=""))]
        constraints = [models.UniqueConstraint(fields=["repeat_key"], condition=Q(repeat_key__isnull=False),
                                               name="request_repeat_key")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


def new_approval_id() -> str:
    return new_id("apr")


class Approval(models.Model):
    """An action that needs a second person (maker-checker): what was proposed, by whom, and who
    decided. The action itself is named and carried as data (`action`, `payload`); the app that
    owns it registers how it runs (audit/approvals.py), so the approval runs it through the same
    service it would have used directly."""

    PENDING, APPROVED, REJECTED, EXPIRED = "pending", "approved", "rejected", "expired"
    STATUSES = [PENDING, APPROVED, REJECTED, EXPIRED]

    id = models.CharField(primary_key=True, max_length=40, default=new_approval_id, editable=False)
    # A plain column, no foreign key up (audit sits below tenants).
    tenant_id = models.CharField(max_length=40)
    action = models.CharField(max_length=50)
    payload = models.JSONField(default=dict)
    summary = models.CharField(max_length=500, blank=True, default="",
                               help_text="What the action will do, in words, for the person who decides.")
    # The object the action is about (a break, a transaction, a rule), for lists and the trace.
    target = models.CharField(max_length=80, blank=True, default="")
    status = models.CharField(max_length=10, choices=[(s, s) for s in STATUSES], default=PENDING)
    proposed_by = models.CharField(max_length=200)
    proposed_by_label = models.CharField(max_length=200, blank=True, default="")
    decided_by = models.CharField(max_length=200, blank=True, default="")
    decided_by_label = models.CharField(max_length=200, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    result = models.CharField(max_length=200, blank=True, default="",
                              help_text="What the approved action produced (an id), as its service returned it.")
    source_request_id = models.CharField(max_length=80, blank=True, default="")
    # While a decider runs the action (outside this row's transaction: the action's service is
    # its own), no one else may decide; a decider that died leaves the lease to lapse.
    decision_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    history = tracked_history()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant_id", "status", "-id"], name="approval_tenant_status"),
                   models.Index(fields=["target"], name="approval_target", condition=~Q(target=""))]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["pending", "approved", "rejected", "expired"]),
                                   name="approval_status_known"),
            # The four-eyes rule, in the database too: whoever decides is not who proposed.
            models.CheckConstraint(condition=Q(decided_by="") | ~Q(decided_by=models.F("proposed_by")),
                                   name="approval_decider_not_proposer"),
            models.CheckConstraint(condition=Q(status__in=["pending", "expired"]) | ~Q(decided_by=""),
                                   name="approval_decided_names_decider"),
            # One proposal at a time per action and object (two adjusting postings for one break).
            models.UniqueConstraint(fields=["tenant_id", "action", "target"],
                                    condition=Q(status="pending") & ~Q(target=""), name="approval_one_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.action} ({self.status})"
