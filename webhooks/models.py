from django.db import models

from audit.history import tracked_history
from zentra.ids import new_id


def new_event_id() -> str:
    return new_id("evt")


class Event(models.Model):
    """The outbox: one row per state change, written in the transaction that made the change.

    An event exists if and only if its change committed. Delivery rows (one per subscribed
    endpoint) reference it; `webhook-id` on the wire is this id, stable across retries.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_event_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=100)
    resource_id = models.CharField(max_length=40, db_index=True)
    data = models.JSONField()
    actor = models.CharField(max_length=200, blank=True, default="")
    request_id = models.CharField(max_length=80, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="event_tenant_recent"),
            models.Index(fields=["tenant", "type", "-id"], name="event_tenant_type_recent"),
            # What a request caused: the idempotency gate asks whether a request's change
            # committed, and an operator traces a request to its events.
            models.Index(fields=["tenant", "request_id"], condition=~models.Q(request_id=""),
                         name="event_tenant_request"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"



def new_endpoint_id() -> str:
    return new_id("we")


def new_delivery_id() -> str:
    return new_id("del")


class WebhookEndpoint(models.Model):
    ENABLED, DISABLED = "enabled", "disabled"

    id = models.CharField(primary_key=True, max_length=40, default=new_endpoint_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    event_types = models.JSONField(default=list, help_text='Types, families ("hold.*") or "*".')
    description = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=10, choices=[(ENABLED, "Enabled"), (DISABLED, "Disabled")], default=ENABLED)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    # Signing keys (whsec_...). The previous one keeps signing beside the new one until it
    # expires, so receivers can roll over without dropping a delivery.
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = tracked_history(excluded_fields=["secret", "previous_secret", "failing_since", "last_success_at"])

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "status"], name="endpoint_tenant_status")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=["enabled", "disabled"]),
                                   name="endpoint_status_known"),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.id})"


class Delivery(models.Model):
    """One event going to one endpoint. Pending deliveries are due at `next_attempt_at`; a
    relay claims them with a lease, so a delivery whose worker died is claimed again later."""

    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_delivery_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=10, default=PENDING,
                              choices=[(PENDING, "Pending"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed")])
    attempts_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=80, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_due"),
            models.Index(fields=["endpoint", "status", "-created_at"], name="delivery_endpoint_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=["pending", "succeeded", "failed"]),
                                   name="delivery_status_known"),
            models.CheckConstraint(condition=~models.Q(status="pending") | models.Q(next_attempt_at__isnull=False),
                                   name="delivery_pending_is_scheduled"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    request_headers = models.JSONField(default=dict)
    status_code = models.PositiveSmallIntegerField(help_text="0 for a network error")
    duration_ms = models.PositiveIntegerField()
    response_body = models.TextField(blank=True, default="")
    error = models.CharField(max_length=1000, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_number_unique")]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code}"
