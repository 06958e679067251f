from django.db import models


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key, scoped to its tenant, with the answer it got.

    Claimed (status `in_progress`, with a lease) in its own committed transaction before the
    request runs, so a concurrent duplicate sees it; completed with the stored status and body.
    """

    IN_PROGRESS, COMPLETED = "in_progress", "completed"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=20, default=IN_PROGRESS)
    locked_until = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    response_content_type = models.CharField(max_length=100, blank=True, default="")
    request_id = models.CharField(max_length=80, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_key_unique_per_tenant"),
            models.CheckConstraint(condition=models.Q(status__in=["in_progress", "completed"]),
                                   name="idempotency_status_known"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.key}"
