"""Every request starts with an empty tenant context and ends it, whatever set it meanwhile:
API authentication (the key's tenant) or tenants.middleware.OperatorScopeMiddleware (the
operator's tenants). Outermost, so the request's own evidence, written last, still has it."""

from __future__ import annotations

from collections.abc import Callable

from .scope import NO_TENANT, scope_reset, scope_set


class TenantScopeMiddleware:
    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        # Before authentication only tenantless rows are reachable: the evidence of requests
        # that never showed a key (counted on one row, which must be found to be counted).
        tokens = scope_set((NO_TENANT,))
        try:
            return self.get_response(request)
        finally:
            scope_reset(tokens)
