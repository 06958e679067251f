from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from zentra.ids import new_id


class StaffSecurityEvent(models.Model):
    """A change to how a staff login is protected: who lifted whose lockout, who enrolled a second
    factor or was issued recovery codes, when a recovery code was spent.

    The login is named by id and username as plain values, without a foreign key: the evidence
    outlives the user row.
    """

    LOCKOUT_RESET = "lockout_reset"
    TWO_FACTOR_ENROLLED = "two_factor_enrolled"
    RECOVERY_CODES_ISSUED = "recovery_codes_issued"
    RECOVERY_CODE_USED = "recovery_code_used"
    KINDS = [
        (LOCKOUT_RESET, "lockout lifted"),
        (TWO_FACTOR_ENROLLED, "second factor enrolled"),
        (RECOVERY_CODES_ISSUED, "new recovery codes issued"),
        (RECOVERY_CODE_USED, "recovery code used"),
    ]

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=40, choices=KINDS)
    actor = models.CharField(max_length=200, help_text="Who did it (user:<id>).")
    actor_label = models.CharField(max_length=200, blank=True, default="")
    user_id = models.BigIntegerField(null=True, blank=True, db_index=True,
                                     help_text="The login it concerns, when it exists.")
    username = models.CharField(max_length=150, db_index=True, help_text="The login it concerns.")
    ip_address = models.GenericIPAddressField(null=True, blank=True,
                                              help_text="For a lifted lockout: the address it applied to.")
    detail = models.CharField(max_length=500, blank=True, default="", help_text="What changed.")
    reason = models.CharField(max_length=500, blank=True, default="", help_text="Why, as the operator gave it.")
    request_id = models.CharField(max_length=80, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.username} by {self.actor_label or self.actor}"


def new_export_id() -> str:
    return new_id("exp")


class EvidenceExport(models.Model):
    """A signed zip of the evidence about one account, payment intent or hold over a period
    (docs/evidence-exports.md).

    Asked for by the API or the admin, built by a worker (backoffice/services/exports.py):
    `building` until the zip, its manifest and signature are stored here, then `ready`, or
    `failed` with the reason. The zip lives in the row itself, so any web process serves it
    without shared storage; it is written once and never changed, and its sha256 is kept beside
    it. The period is [from, to): `to` is the moment the export was asked for unless given, so a
    build that runs later still describes the period that was asked for.
    """

    BUILDING, READY, FAILED = "building", "ready", "failed"
    STATUSES = [(BUILDING, "building"), (READY, "ready"), (FAILED, "failed")]

    id = models.CharField(primary_key=True, max_length=40, default=new_export_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    resource = models.CharField(max_length=40, help_text="The account, payment intent or hold it is about.")
    period_from = models.DateTimeField(null=True, blank=True, help_text="Start of the period (inclusive); "
                                                                       "empty: since the resource began.")
    period_to = models.DateTimeField(help_text="End of the period (exclusive).")
    status = models.CharField(max_length=10, choices=STATUSES, default=BUILDING)
    requested_by = models.CharField(max_length=200, help_text="Who asked for it (user:<id>, api_key:<id>).")
    requested_by_label = models.CharField(max_length=200, blank=True, default="")
    request_id = models.CharField(max_length=80, blank=True, default="", help_text="The request that asked.")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    kid = models.CharField(max_length=16, blank=True, default="", help_text="The signing key of its manifest.")
    sha256 = models.CharField(max_length=64, blank=True, default="", help_text="SHA-256 of the zip.")
    size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes of the zip.")
    files = models.JSONField(default=dict, blank=True, help_text="The manifest's files: name -> sha256.")
    archive = models.BinaryField(null=True, blank=True, editable=False)
    failure_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"], name="export_tenant_id"),
                   models.Index(fields=["tenant", "resource"], name="export_tenant_resource")]
        constraints = [
            models.CheckConstraint(condition=Q(period_from__isnull=True) | Q(period_from__lt=F("period_to")),
                                   name="export_period_ordered"),
            models.CheckConstraint(condition=~Q(status="ready") | (Q(archive__isnull=False) & ~Q(sha256="")),
                                   name="export_ready_has_archive"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.resource}, {self.status})"


class EvidenceExportDownload(models.Model):
    """One copy of an export handed out, through the API or the admin: who took it, when, which
    bytes (their sha256) and under which request id. Written before the bytes leave, never
    changed or deleted (the application role may only insert here)."""

    API, ADMIN = "api", "admin"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    export = models.ForeignKey(EvidenceExport, on_delete=models.PROTECT, related_name="downloads")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=200)
    actor_label = models.CharField(max_length=200, blank=True, default="")
    channel = models.CharField(max_length=10, choices=[(API, "API"), (ADMIN, "admin")])
    request_id = models.CharField(max_length=80, blank=True, default="")
    client_address = models.GenericIPAddressField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the zip handed out.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="export_download_tenant_time")]

    def __str__(self) -> str:
        return f"{self.export_id} downloaded by {self.actor_label or self.actor}"
