"""Bearer API-key authentication: every API request enters with exactly one tenant."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from audit.actors import Actor
from audit.services.evidence import access_denial_record
from tenants.keys import key_matches, parse_prefix
from tenants.models import ApiKey

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


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("Authorization must be 'Bearer <api key>'")
        prefix = parse_prefix(token)
        if prefix is None:
            raise AuthenticationFailed("Invalid API key")
        api_key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
        if api_key is None or not key_matches(token, api_key.key_hash):
            raise AuthenticationFailed("Invalid API key")
        if api_key.revoked_at is not None:
            access_denial_record(actor=Actor.for_api_key(api_key), tenant_id=api_key.tenant_id, role=api_key.scope,
                                 action=f"{request.method} {request.path}", reason="API key revoked",
                                 request_id=getattr(request, "request_id", ""))
            raise AuthenticationFailed("API key revoked")
        now = timezone.now()
        if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
            ).update(last_used_at=now)
        client = ApiClient(api_key)
        # The Django request carries the scope too, for middleware evidence (RequestRecord).
        django_request = request._request
        django_request.tenant = api_key.tenant
        django_request.actor = client.actor
        django_request.api_key = api_key
        return client, api_key

    def authenticate_header(self, request):
        return 'Bearer realm="zentra"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "zentra.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "zk_<prefix>_<secret>"}
