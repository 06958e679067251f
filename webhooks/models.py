from django.db import models

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
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"

