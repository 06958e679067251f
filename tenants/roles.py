"""Roles map to django-guardian object permissions on the Tenant object (never per-row grants)."""

VIEW = "view_tenant_data"
OPERATE = "operate_tenant"
MANAGE = "manage_tenant"
EVIDENCE = "view_tenant_evidence"

TENANT_PERMISSIONS = (
    (VIEW, "Can view the tenant's accounts, ledger and events"),
    (OPERATE, "Can act on the tenant's accounts and money"),
    (MANAGE, "Can manage the tenant's members and API keys"),
    (EVIDENCE, "Can browse the tenant's history, access denials and request records"),
)

OWNER, OPERATOR, VIEWER, COMPLIANCE = "owner", "operator", "viewer", "compliance"
ROLE_CHOICES = [(OWNER, "Owner"), (OPERATOR, "Operator"), (VIEWER, "Viewer"), (COMPLIANCE, "Compliance")]

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    OWNER: frozenset({VIEW, OPERATE, MANAGE, EVIDENCE}),
    OPERATOR: frozenset({VIEW, OPERATE}),
    VIEWER: frozenset({VIEW}),
    COMPLIANCE: frozenset({VIEW, EVIDENCE}),
}


def qualified(perm: str) -> str:
    return f"tenants.{perm}"
