import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug

from audit.actors import Actor
from backoffice.services.bootstrap import tenant_bootstrap
from ledger import currencies
from tenants.models import Tenant
from zentra.errors import ZentraError


class Command(BaseCommand):
    help = ("Create a tenant with its system accounts (reserve, settlement, payout) for a currency and a "
            'write API key; prints {"tenant": "tnt_...", "api_key": "zk_..."}.')

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--currency", default="USD")

    def handle(self, *args, slug, name, currency, **options):
        try:
            validate_slug(slug)
        except ValidationError as exc:
            raise CommandError(f"invalid slug {slug!r}: letters, digits, hyphens and underscores only") from exc
        if not currencies.is_supported(currency):
            raise CommandError(f"unsupported currency {currency!r}: give an upper-case ISO 4217 code such as USD")
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"tenant {slug!r} already exists; nothing was created")
        try:
            tenant, raw_key = tenant_bootstrap(slug=slug, name=name or slug, currency=currency,
                                               actor=Actor.system("bootstrap_tenant"))
        except ZentraError as exc:
            raise CommandError(exc.detail) from exc
        except ValidationError as exc:  # model validation (a slug or name too long): nothing was created
            details = ("; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
                       if hasattr(exc, "error_dict") else " ".join(exc.messages))
            raise CommandError(f"invalid tenant: {details}; nothing was created") from exc
        self.stdout.write(json.dumps({"tenant": tenant.id, "api_key": raw_key}))
