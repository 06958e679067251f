from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models


class AccessDenial(models.Model):
    """A refused action: who tried what on which target, and under which tenant and role.

    Identifiers are stored as text, without foreign keys: the row is written on the
    evidence connection, which must not wait on (or roll back with) the refused request.
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

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant_id", "-created_at"], name="denial_tenant_time"),
                   GinIndex(fields=["actor_tenant_ids"], name="denial_actor_tenants")]

    def __str__(self) -> str:
        return f"{self.actor} denied {self.action} {self.target}"


class RequestRecord(models.Model):
    """One API call: the evidence of who called what, for which tenant, and how it ended."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    request_id = models.CharField(max_length=80, db_index=True)
    tenant_id = models.CharField(max_length=40, blank=True, default="")
    actor = models.CharField(max_length=200, blank=True, default="")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    idempotent_replay = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant_id", "-created_at"], name="request_tenant_time")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"
