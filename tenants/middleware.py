"""The database tenant context of an operator's admin request (tenants/scope.py)."""

from __future__ import annotations

from collections.abc import Callable

from zentra.api.middleware import is_api_path
from zentra.db.scope import scope_set

from .scope import operator_tenant_ids


class OperatorScopeMiddleware:
    """After authentication: an operator's requests see the rows of their tenants (the outer
    TenantScopeMiddleware ends the scope with the request)."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated and user.is_active and user.is_staff
                and not is_api_path(request.path)):
            scope_set(operator_tenant_ids(user), user_id=user.pk)
        return self.get_response(request)
