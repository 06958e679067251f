from django.db import models
from django.db.models import Q

from audit.history import tracked_history
from zentra.ids import new_id

ACCOUNT_TYPES = ["operating", "customer", "merchant", "settlement", "payout", "reserve", "fees", "external"]
SYSTEM_ACCOUNT_TYPES = ["reserve", "settlement", "payout"]
DEBIT, CREDIT = "debit", "credit"


def new_account_id() -> str:
    return new_id("acct")


class Account(models.Model):
    """A balance in one currency, owned by one tenant.

    `posted_balance` is signed in the account's normal direction (credit-normal: credits add).
    It is changed only by ledger services, in the same transaction as the entries that explain it.
    """

    ACTIVE, FROZEN, CLOSED = "active", "frozen", "closed"
    STATUS_CHOICES = [(ACTIVE, "Active"), (FROZEN, "Frozen"), (CLOSED, "Closed")]
    TYPE_CHOICES = [(t, t.capitalize()) for t in ACCOUNT_TYPES]
    NORMAL_BALANCE_CHOICES = [(DEBIT, "Debit"), (CREDIT, "Credit")]

    id = models.CharField(primary_key=True, max_length=40, default=new_account_id, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="accounts")
    customer = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    currency = models.CharField(max_length=3)
    account_type = models.CharField(max_length=20, choices=TYPE_CHOICES)
    normal_balance = models.CharField(max_length=6, choices=NORMAL_BALANCE_CHOICES, default=CREDIT)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=ACTIVE)
    allow_overdraft = models.BooleanField(default=False)
    overdraft_limit = models.BigIntegerField(
        null=True, blank=True, help_text="With allow_overdraft: how far below zero it may go (empty: no limit).")
    is_system = models.BooleanField(default=False, help_text="Reserve, settlement or payout account of the tenant.")
    posted_balance = models.BigIntegerField(default=0, editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = tracked_history()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="account_tenant_recent"),
            models.Index(fields=["tenant", "customer"], name="account_tenant_customer"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="account_currency_iso_shape"),
            models.CheckConstraint(condition=Q(account_type__in=ACCOUNT_TYPES), name="account_type_known"),
            models.CheckConstraint(condition=Q(normal_balance__in=[DEBIT, CREDIT]), name="account_normal_balance_known"),
            models.CheckConstraint(condition=Q(status__in=["active", "frozen", "closed"]), name="account_status_known"),
            models.CheckConstraint(condition=Q(overdraft_limit__isnull=True) | Q(overdraft_limit__gte=0),
                                   name="account_overdraft_limit_not_negative"),
            # The no-overdraft rule, in the database: a bug in Python hits this, not the money.
            models.CheckConstraint(
                condition=Q(posted_balance__gte=0)
                | (Q(allow_overdraft=True) & (Q(overdraft_limit__isnull=True)
                                              | Q(posted_balance__gte=-models.F("overdraft_limit")))),
                name="account_balance_within_overdraft",
            ),
            models.UniqueConstraint(fields=["tenant", "currency", "account_type"], condition=Q(is_system=True),
                                    name="account_one_system_account_per_type"),
        ]

    def __str__(self) -> str:
        label = self.name or self.customer or self.account_type
        return f"{label} ({self.currency}, {self.id})"
