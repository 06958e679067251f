from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from audit.history import tracked_history
from zentra.ids import new_id

from .roles import ROLE_CHOICES, TENANT_PERMISSIONS


def new_tenant_id() -> str:
    return new_id("tnt")


def new_api_key_id() -> str:
    return new_id("key")


class Tenant(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_tenant_id, editable=False)
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # Each API key's request budget (zentra/api/ratelimit.py); empty: the platform's default.
    # Only the platform superuser changes them (tenants/services/tenants.py).
    rate_limit_per_second = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Requests per second per API key; empty: the default (ZENTRA_RATE_LIMIT_PER_SECOND).")
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Requests per minute per API key; empty: the default (ZENTRA_RATE_LIMIT_PER_MINUTE).")
    # Which actions need a second person (tenants/approval_rules.py). Adjusting postings always do.
    approval_reversal_above = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Reversals of more than this (minor units) need a second person; empty: the default "
                  "(ZENTRA_APPROVAL_REVERSAL_ABOVE).")
    approval_review_above = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Approving a payment in review above this (minor units) needs a second person; empty: the "
                  "default (ZENTRA_APPROVAL_REVIEW_ABOVE).")
    approval_period_close = models.BooleanField(default=True,
                                                help_text="Closing a ledger period needs a second person.")
    approval_policy_rules = models.BooleanField(default=True,
                                                help_text="Changing a policy rule needs a second person.")
    approvals_for_api_keys = models.BooleanField(
        default=False, help_text="API keys need a second actor too (otherwise they act directly, except for "
                                 "adjusting postings).")

    history = tracked_history()

    class Meta:
        ordering = ["slug"]
        permissions = TENANT_PERMISSIONS

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=ROLE_CHOICES)
    created_at = models.DateTimeField(auto_now_add=True)

    history = tracked_history()

    class Meta:
        ordering = ["tenant__slug", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_one_role_per_tenant"),
            models.CheckConstraint(condition=models.Q(role__in=["owner", "operator", "viewer", "compliance"]),
                                   name="membership_role_known"),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.tenant}"


class ApiKey(models.Model):
    SCOPE_READ, SCOPE_WRITE = "read", "write"
    SCOPE_CHOICES = [(SCOPE_READ, "Read only"), (SCOPE_WRITE, "Read and write")]

    id = models.CharField(primary_key=True, max_length=40, default=new_api_key_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True, editable=False,
                              validators=[RegexValidator(r"^[A-Za-z0-9]+$")])
    # sha256 of the whole key: keys are 190 random bits, so a slow password hash buys nothing.
    key_hash = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=10, choices=SCOPE_CHOICES, default=SCOPE_WRITE)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True, default="", editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = tracked_history(excluded_fields=["key_hash", "last_used_at"])

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=["read", "write"]), name="api_key_scope_known"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (zk_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
