"""Bearer API-key authentication: every API request enters with exactly one tenant."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, NoReturn

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from audit.actors import Actor
from audit.services.evidence import access_denial_record
from tenants.keys import key_matches, parse_prefix
from tenants.models import ApiKey, Tenant
from zentra.db.scope import NO_TENANT, scope_set, tenant_scope
from zentra.db.tenancy import api_key_tenant

from .errors import RateLimited
from .ratelimit import charge_failure, charge_key

# last_used_at is evidence, not a hot counter: refresh it at most this often per key.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiClient:
    """The DRF `request.user` of an API call: the key, its tenant and its actor."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.tenant = api_key.tenant
        self.actor = Actor.for_api_key(api_key)

    def __str__(self) -> str:
        return str(self.actor)


INVALID_KEY = "Invalid API key"


def _api_key_by_prefix(prefix: str) -> ApiKey | None:
    """Before authentication no tenant is known and row-level security shows no key: the one
    SECURITY DEFINER lookup names the tenant of the prefix, and the key is read within it."""
    tenant_id = api_key_tenant(prefix)
    if tenant_id is None:
        return None
    with tenant_scope([tenant_id]):
        return ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()


# Keys this process has read, by prefix, with when (time.monotonic) they were read: the two
# queries of the lookup are most of what authentication costs. Only keys that exist are kept
# (unknown prefixes are an attacker's to choose), at most _CACHE_SIZE of them. The secret is
# still checked against the stored hash on every request.
_cached_keys: dict[str, tuple[float, ApiKey]] = {}
_CACHE_SIZE = 10_000
_clock = time.monotonic


def api_key_for_prefix(prefix: str) -> ApiKey | None:
    ttl = settings.ZENTRA_API_KEY_CACHE_SECONDS
    if ttl:
        hit = _cached_keys.get(prefix)
        if hit is not None and _clock() - hit[0] < ttl:
            return hit[1]
    api_key = _api_key_by_prefix(prefix)
    if api_key is not None and ttl:
        if len(_cached_keys) >= _CACHE_SIZE:
            _cached_keys.clear()
        _cached_keys[prefix] = (_clock(), api_key)
    else:
        _cached_keys.pop(prefix, None)
    return api_key


def forget_api_keys(*, prefix: str | None = None, tenant_id: str | None = None) -> None:
    """Drop cached keys: one key (revoked, changed) or every key of a tenant (its settings,
    such as its budgets and approval rules, travel with the key)."""
    if prefix is not None:
        _cached_keys.pop(prefix, None)
    if tenant_id is not None:
        for cached_prefix, (_, api_key) in list(_cached_keys.items()):
            if api_key.tenant_id == tenant_id:
                _cached_keys.pop(cached_prefix, None)


def _key_changed(sender: Any, instance: ApiKey, **kwargs: Any) -> None:
    # Now, and again once the change commits: a request of another thread may have read the key
    # as it stood before the commit in between.
    forget_api_keys(prefix=instance.prefix)
    transaction.on_commit(lambda: forget_api_keys(prefix=instance.prefix))


def _tenant_changed(sender: Any, instance: Tenant, **kwargs: Any) -> None:
    forget_api_keys(tenant_id=instance.pk)
    transaction.on_commit(lambda: forget_api_keys(tenant_id=instance.pk))


# A change made in this process takes effect here at once; other processes see it within the TTL.
for _signal in (post_save, post_delete):
    _signal.connect(_key_changed, sender=ApiKey, dispatch_uid="zentra.api.forget_api_key")
    _signal.connect(_tenant_changed, sender=Tenant, dispatch_uid="zentra.api.forget_tenant_keys")


class ApiKeyAuthentication(BaseAuthentication):
    """The key proves the tenant. Every failure (no key, a malformed header, an unknown or revoked
    key) is charged to the client address's failed-authentication budget, and past it answered
    429; a good key is charged to its own budget (zentra/api/ratelimit.py)."""

    def authenticate(self, request):
        django_request = request._request
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            # DRF answers 401 for the missing key; it is a failed authentication all the same.
            self._charge_failure(django_request)
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            self._fail(django_request, "Authorization must be 'Bearer <api key>'")
        prefix = parse_prefix(token)
        api_key = api_key_for_prefix(prefix) if prefix else None
        if api_key is None or not key_matches(token, api_key.key_hash):
            self._fail(django_request, INVALID_KEY)
        if api_key.revoked_at is not None:
            # Answered exactly like an unknown key: whoever holds it learns nothing from the answer.
            with tenant_scope([api_key.tenant_id, NO_TENANT]):  # its evidence is the key's tenant's
                self._fail(django_request, INVALID_KEY, revoked=api_key)
        # From here on the request sees its tenant's rows (TenantScopeMiddleware ends the scope).
        scope_set([api_key.tenant_id])
        client = ApiClient(api_key)
        # The Django request carries the scope too, for middleware evidence (RequestRecord); a
        # call over its budget is recorded under its key and tenant.
        django_request.tenant = api_key.tenant
        django_request.actor = client.actor
        django_request.api_key = api_key
        decision = charge_key(django_request, api_key)
        if not decision.allowed:
            raise RateLimited(decision, decision.explain("this API key's"))
        now = timezone.now()
        if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
            ).update(last_used_at=now)
            api_key.last_used_at = now  # the cached key too: no second UPDATE within the resolution
        return client, api_key

    @staticmethod
    def _charge_failure(django_request) -> None:
        decision = charge_failure(django_request)
        if not decision.allowed:
            raise RateLimited(decision, decision.explain("this address's failed-authentication"))

    def _fail(self, django_request, message: str, *, revoked: ApiKey | None = None) -> NoReturn:
        self._charge_failure(django_request)
        if revoked is not None:
            # Evidence for the key's tenant; counted, like every refusal of a caller who proved
            # nothing, per address, action and reason (audit/services/evidence.py).
            access_denial_record(actor=Actor.for_api_key(revoked), tenant_id=revoked.tenant_id, role=revoked.scope,
                                 action=f"{django_request.method} {django_request.path}", reason="API key revoked",
                                 request_id=getattr(django_request, "request_id", ""), unauthenticated=True)
        raise AuthenticationFailed(message)

    def authenticate_header(self, request):
        return 'Bearer realm="zentra"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "zentra.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "zk_<prefix>_<secret>"}
