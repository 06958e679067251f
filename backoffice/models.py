from django.db import models


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
