"""Signed checkpoints of every account head (docs/security.md, "Ledger key and checkpoints").

A checkpoint lists each account's (last sequence, chain hash) at one instant and signs that
document with the service's Ed25519 key. Verification checks each account's chain against the
latest checkpoint's heads, so rewriting history before it is caught even by a holder of the
ledger key. Taken daily, at period close and on demand (`manage.py ledger_checkpoint`); the
first one of a tenant whose ledger predates the key seals its `legacy` entries.
"""

from __future__ import annotations

import hashlib
import json

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from tenants.models import Tenant
from zentra.keys import LEGACY_KEY_ID, signing_keys

from ..chain import current_key_id
from ..models import Account, CheckpointHead, LedgerCheckpoint, LedgerEntry


def checkpoint_document(checkpoint: LedgerCheckpoint, heads: list[tuple[str, int, str]]) -> bytes:
    """The exact bytes that are signed: rebuilt from the stored rows to verify."""
    return json.dumps({
        "checkpoint": checkpoint.id, "tenant": checkpoint.tenant_id, "reason": checkpoint.reason,
        "created_at": checkpoint.created_at.isoformat(), "kid": checkpoint.kid,
        "ledger_key_id": checkpoint.ledger_key_id, "heads": [list(head) for head in sorted(heads)],
    }, separators=(",", ":"), sort_keys=True).encode()


def checkpoint_take(*, tenant: Tenant, reason: str, actor: Actor) -> LedgerCheckpoint:
    keys = signing_keys()
    with transaction.atomic():
        # One statement reads every head, so the set is consistent without locking a posting out.
        heads = list(Account.rows.filter(tenant=tenant).order_by("id")
                     .values_list("id", "last_sequence", "hash_head"))
        checkpoint = LedgerCheckpoint(tenant=tenant, reason=reason, actor=str(actor), kid=keys.kid,
                                      ledger_key_id=current_key_id(), accounts=len(heads), created_at=timezone.now())
        document = checkpoint_document(checkpoint, heads)
        checkpoint.digest = hashlib.sha256(document).hexdigest()
        checkpoint.signature = keys.sign(document)
        checkpoint.save(force_insert=True)
        CheckpointHead.objects.bulk_create([
            CheckpointHead(tenant=tenant, checkpoint=checkpoint, account_id=account_id, sequence=sequence,
                           hash=hash_head) for account_id, sequence, hash_head in heads], batch_size=5000)
    return checkpoint


def checkpoint_signature_valid(checkpoint: LedgerCheckpoint, heads: list[tuple[str, int, str]]) -> bool:
    document = checkpoint_document(checkpoint, heads)
    return (hashlib.sha256(document).hexdigest() == checkpoint.digest
            and signing_keys().verify(checkpoint.kid, document, checkpoint.signature))


def checkpoint_latest(tenant: Tenant) -> LedgerCheckpoint | None:
    return LedgerCheckpoint.objects.filter(tenant=tenant).order_by("-created_at", "-id").first()


def checkpoint_heads(checkpoint: LedgerCheckpoint) -> list[tuple[str, int, str]]:
    return list(checkpoint.heads.values_list("account_id", "sequence", "hash"))


def legacy_entries_seal(*, tenant: Tenant, actor: Actor) -> LedgerCheckpoint | None:
    """When the ledger key is introduced: seal the tenant's pre-key entries under a signed
    checkpoint, once (a tenant with a checkpoint, or without legacy entries, needs none)."""
    if LedgerCheckpoint.objects.filter(tenant=tenant).exists():
        return None
    if not LedgerEntry.objects.filter(tenant=tenant, key_id=LEGACY_KEY_ID).exists():
        return None
    return checkpoint_take(tenant=tenant, reason="key_introduced", actor=actor)
