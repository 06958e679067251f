from django.core.management.base import BaseCommand, CommandError

from audit.actors import Actor
from ledger.models import Account
from ledger.selectors import account_balances
from ledger.services.shards import account_shards_set
from tenants.models import Tenant
from zentra.errors import ZentraError


class Command(BaseCommand):
    help = ("Spread a hot account over more rows (docs/architecture.md, Hot accounts): each shard locks on its "
            "own, the account's balance is their sum. Shards are never removed. Emits account.sharded.")

    def add_arguments(self, parser):
        parser.add_argument("account", help="the account's id")
        parser.add_argument("shards", type=int, help="how many rows in all (at least as many as it has)")
        parser.add_argument("--tenant", metavar="SLUG", required=True, help="the tenant that owns the account")
        parser.add_argument("--reason", required=True, help="why: kept in the account's history")

    def handle(self, *args, account, shards, tenant, reason, **options):
        owner = Tenant.objects.filter(slug=tenant).first()
        if owner is None:
            raise CommandError(f"no tenant with slug {tenant!r}")
        try:
            sharded = account_shards_set(tenant=owner, account_id=account, shards=shards, reason=reason,
                                         actor=Actor.system("shard_account"))
        except ZentraError as refused:
            raise CommandError(refused.detail) from refused
        posted = account_balances(Account.objects.get(pk=sharded.pk)).posted
        self.stdout.write(f"{sharded.id}: {sharded.shard_count} shard(s), posted balance {posted}")
