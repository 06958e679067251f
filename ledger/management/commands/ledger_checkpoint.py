from django.core.management.base import BaseCommand, CommandError

from audit.actors import Actor
from ledger.services.checkpoints import checkpoint_take
from tenants.models import Tenant
from zentra.keys import signing_keys


class Command(BaseCommand):
    help = ("Take a signed checkpoint of every account head (per tenant): verification then checks each chain "
            "against it. The first one after the ledger key is introduced seals the entries written before it.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant")

    def handle(self, *args, tenant=None, **options):
        tenants = Tenant.objects.order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"no tenant with slug {tenant!r}")
        actor = Actor.system("ledger_checkpoint")
        for scope in tenants:
            checkpoint = checkpoint_take(tenant=scope, reason="on_demand", actor=actor)
            self.stdout.write(f"{scope.slug:<20} checkpoint {checkpoint.id}  accounts {checkpoint.accounts:>7}  "
                              f"ledger key {checkpoint.ledger_key_id}  signed by {checkpoint.kid}")
        self.stdout.write(f"signing key {signing_keys().kid}: public key at GET /v1/signing_keys")
