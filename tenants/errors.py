from zentra.errors import Conflict, ValidationFailed


class TenantSlugTaken(Conflict):
    code = "tenant_exists"
    title = "Tenant already exists"


class InvalidRole(ValidationFailed):
    pass
