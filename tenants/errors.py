from zentra.errors import Conflict, ValidationFailed, ZentraError


class TenantSlugTaken(Conflict):
    code = "tenant_exists"
    title = "Tenant already exists"


class InvalidRole(ValidationFailed):
    pass


class PlatformOnly(ZentraError):
    """What only the platform (its superuser, or a system job) may change about a tenant."""

    status = 403
    code = "permission_denied"
    title = "Permission denied"
