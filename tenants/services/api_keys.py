"""API keys: created with the raw key shown once, revoked with a reason kept as evidence."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor, acting_as
from zentra.errors import InvalidStateTransition, ValidationFailed

from ..keys import api_key_material
from ..models import ApiKey, Tenant


def api_key_create(*, tenant: Tenant, name: str, scope: str, actor: Actor) -> tuple[ApiKey, str]:
    """Returns the key row and the raw key; the raw key is never stored and is shown once."""
    if scope not in (ApiKey.SCOPE_READ, ApiKey.SCOPE_WRITE):
        raise ValidationFailed(f"Unknown scope {scope!r}", errors=[{"field": "scope", "message": "read or write."}])
    raw, prefix, key_hash = api_key_material()
    with transaction.atomic(), acting_as(actor):
        api_key = ApiKey(tenant=tenant, name=name, prefix=prefix, key_hash=key_hash, scope=scope,
                         created_by=str(actor))
        api_key.full_clean(exclude=["prefix", "key_hash"])
        api_key._change_reason = "created"  # type: ignore[attr-defined]
        api_key.save()
        return api_key, raw


def api_key_revoke(*, api_key: ApiKey, actor: Actor, reason: str) -> ApiKey:
    """From now on the key authenticates nothing. The reason stays in the key's history."""
    if not reason.strip():
        raise ValidationFailed("Revoking a key needs a reason", errors=[{"field": "reason", "message": "Required."}])
    with transaction.atomic(), acting_as(actor):
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if locked.revoked_at is not None:
            raise InvalidStateTransition(
                f"API key {locked.id} was already revoked at {locked.revoked_at:%Y-%m-%d %H:%M:%S}")
        locked.revoked_at = timezone.now()
        locked._change_reason = f"revoked: {reason}"[:500]  # type: ignore[attr-defined]
        locked.save(update_fields=["revoked_at"])
        return locked
