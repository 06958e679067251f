from django.core.management.base import BaseCommand

from audit.actors import Actor
from ledger.services.holds import holds_expire_due


class Command(BaseCommand):
    help = ("Release every active hold past its expiry (status expired, an expiry ledger transaction and a "
            "hold.expired event each). Idempotent; safe beside the periodic job.")

    def handle(self, *args, **options):
        count = holds_expire_due(actor=Actor.system("expire_holds"))
        self.stdout.write(f"expired {count} hold(s)")
