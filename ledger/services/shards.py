"""Hot accounts (ARCHITECTURE.md, Hot accounts): spreading one logical account over more rows.

A row turns over once per commit, so an account that every hold, settlement or payout touches is
a queue. Sharding adds rows "<account>.s1", "<account>.s2"...: each with its own lock, sequence
and chain, each starting at zero, so nothing moves and no entry changes (the account stays its
own shard 0). The balance is the sum of the rows. Shards are never removed: they hold entries.
"""

from __future__ import annotations

from django.db import transaction

from audit.actors import Actor, acting_as
from tenants.models import Tenant
from webhooks.services.outbox import event_emit
from zentra.errors import ValidationFailed

from ..errors import InvalidStateTransition
from ..locks import lock_tenant_account
from ..models import MAX_SHARDS, Account, shard_row_id
from ..shapes import account_body


def shard_rows_create(account: Account, first: int = 1) -> None:
    """The shard rows `first` .. shard_count - 1 of a logical account, each a copy of its terms
    starting at zero, in one statement (an account opened sharded, or spread further)."""
    Account.rows.bulk_create([
        Account(id=shard_row_id(account.id, shard), shard_of=account, shard=shard, shard_count=account.shard_count,
                tenant_id=account.tenant_id, customer=account.customer, name=f"{account.name} (shard {shard})",
                currency=account.currency, account_type=account.account_type,
                normal_balance=account.normal_balance, status=account.status,
                allow_overdraft=account.allow_overdraft, overdraft_limit=account.overdraft_limit,
                is_system=account.is_system, max_single_debit=account.max_single_debit,
                max_daily_debit=account.max_daily_debit, metadata={})
        for shard in range(first, account.shard_count)])


def account_shards_set(*, tenant: Tenant, account_id: str, shards: int, actor: Actor, reason: str = "") -> Account:
    """Spread the account over `shards` rows (at least as many as it has), adding the missing
    shard rows. Emits account.sharded."""
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ValidationFailed(f"shards must be a whole number from 1 to {MAX_SHARDS}",
                               errors=[{"field": "shards", "message": f"From 1 to {MAX_SHARDS}."}])
    with transaction.atomic(), acting_as(actor):
        account = lock_tenant_account(tenant_id=tenant.id, account_id=account_id, actor=actor,
                                      action="shard account")
        account.tenant = tenant
        if shards < account.shard_count:
            raise ValidationFailed(f"Account {account.id} has {account.shard_count} shards; shards hold entries and "
                                   "are never removed", errors=[{"field": "shards",
                                                                 "message": f"At least {account.shard_count}."}])
        if account.status == Account.CLOSED:
            raise InvalidStateTransition(f"Account {account.id} is closed")
        if account.allow_overdraft and not account.is_system:
            # A debit of a sharded account draws from each shard down to its own floor: an
            # overdraft (a floor below zero for the account as a whole) has no such split.
            raise ValidationFailed(f"Account {account.id} allows an overdraft; only accounts without one are "
                                   "sharded", errors=[{"field": "shards",
                                                       "message": "Not for an account with an overdraft."}])
        if shards == account.shard_count:
            return account
        Account.rows.filter(shard_of=account.pk).update(shard_count=shards)
        first_new, account.shard_count = account.shard_count, shards
        shard_rows_create(account, first_new)
        # The logical row's history records the change (the rows themselves only follow it).
        account._change_reason = reason or f"spread over {shards} shards"  # type: ignore[attr-defined]
        account.save(update_fields=["shard_count"])
        event_emit(tenant=account.tenant, type="account.sharded", resource_id=account.id,
                   data_object=dict(account_body(account)), actor=actor)
        return account
