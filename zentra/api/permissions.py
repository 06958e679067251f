from rest_framework.permissions import SAFE_METHODS, BasePermission

from audit.services.evidence import access_denial_record


class TenantApiKeyPermission(BasePermission):
    """Any valid key may read its tenant; only write-scoped keys may change anything."""

    message = "This API key is read-only"

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if api_key is None:
            return False
        if request.method in SAFE_METHODS or api_key.scope == api_key.SCOPE_WRITE:
            return True
        access_denial_record(actor=request.user.actor, tenant_id=api_key.tenant_id, role=api_key.scope,
                             action=f"{request.method} {request.path}", reason="read-only API key",
                             request_id=getattr(request, "request_id", ""))
        return False
