"""The demo tenant of `make run`. Idempotent: a second run reuses everything it finds."""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from audit.actors import Actor
from backoffice.selectors.demo import demo_env, demo_key_read
from backoffice.services.demo import demo_receivers_ensure, demo_scene_ensure
from ledger.models import Account
from ledger.services.accounts import account_create, account_system_ensure
from ledger.services.postings import EntryInput
from ledger.services.transfers import ledger_transaction_post
from payments.models import PaymentIntent, PolicyRule, Provider
from payments.services.configuration import policy_rule_create, provider_update
from payments.services.intents import payment_intent_cancel, payment_intent_confirm, payment_intent_create
from payments.services.payouts import payout_create
from payments.services.sandbox import sandbox_routes_ensure, sandbox_settle_due
from tenants.models import ApiKey, Tenant
from tenants.roles import ROLE_PERMISSIONS
from tenants.services.api_keys import api_key_create
from tenants.services.members import membership_set, staff_user_ensure
from tenants.services.tenants import tenant_create

ACTOR = Actor.system("seed_demo")
# Where the demo's raw API key is kept (git-ignored): ZENTRA_DEMO_KEY_FILE moves it (the
# README walkthrough's test keeps its own).
DEMO_KEY_FILE = Path(os.environ.get("ZENTRA_DEMO_KEY_FILE") or Path(settings.BASE_DIR) / "var" / "demo-api-key")

DEMO_ACCOUNTS = [
    # (name, customer, currency, account_type, normal_balance, allow_overdraft)
    ("Funding USD", "", "USD", "external", "debit", True),
    ("Alice USD", "cus_alice", "USD", "customer", "credit", False),
    ("Bob USD", "cus_bob", "USD", "customer", "credit", False),
    ("Demo Shop USD", "mer_demo_shop", "USD", "merchant", "credit", False),
    ("Funding EUR", "", "EUR", "external", "debit", True),
    ("Alice EUR", "cus_alice", "EUR", "customer", "credit", False),
    ("Demo Shop EUR", "mer_demo_shop", "EUR", "merchant", "credit", False),
]


class Command(BaseCommand):
    help = "Seed (or reuse) the demo tenant: one login per role, USD and EUR accounts, an API key."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--key-file", type=Path, default=DEMO_KEY_FILE,
                            help="where the demo API key is kept (benchmarks and screenshots use their own)")

    def handle(self, *args, base_url, key_file, **options):
        tenant = self._tenant("demo", "Demo Payments")
        other = self._tenant("acme", "Acme (another tenant)")
        password = settings.ZENTRA_DEMO_PASSWORD
        for role in ROLE_PERMISSIONS:
            user = staff_user_ensure(username=f"demo-{role}", password=password, actor=ACTOR)
            membership_set(tenant=tenant, user=user, role=role, actor=ACTOR)
        acme_user = staff_user_ensure(username="acme-operator", password=password, actor=ACTOR)
        membership_set(tenant=other, user=acme_user, role="operator", actor=ACTOR)

        accounts = {spec[0]: self._account(tenant, *spec) for spec in DEMO_ACCOUNTS}
        self._account(other, "Acme customer USD", "cus_acme", "USD", "customer", "credit", False)
        self._fund(tenant, accounts)
        for currency in ("USD", "EUR"):
            sandbox_routes_ensure(tenant=tenant, currency=currency, actor=ACTOR)
            sandbox_routes_ensure(tenant=other, currency=currency, actor=ACTOR)
        demo_receivers_ensure(tenant=tenant, actor=ACTOR)
        self._intents(tenant, accounts)
        demo_scene_ensure(tenant=tenant, other=other, accounts=accounts, actor=ACTOR)
        self._api_key(tenant, key_file)

        if options["verbosity"] > 0:  # `make run` seeds quietly and prints the same lines last
            self.stdout.write(demo_env(base_url=base_url.rstrip("/"), key_file=key_file) or "")

    def _tenant(self, slug: str, name: str) -> Tenant:
        tenant = Tenant.objects.filter(slug=slug).first() or tenant_create(slug=slug, name=name, actor=ACTOR)
        for currency in ("USD", "EUR"):
            account_system_ensure(tenant=tenant, currency=currency, actor=ACTOR)
        return tenant

    def _account(self, tenant, name, customer, currency, account_type, normal_balance, allow_overdraft) -> Account:
        existing = Account.objects.filter(tenant=tenant, name=name).first()
        return existing or account_create(
            tenant=tenant, name=name, customer=customer, currency=currency, account_type=account_type,
            normal_balance=normal_balance, allow_overdraft=allow_overdraft, actor=ACTOR)

    def _fund(self, tenant, accounts) -> None:
        """Opening balances, posted once through the ledger like any other transfer."""
        for funding, customer, amount in (("Funding USD", "Alice USD", 250_000), ("Funding USD", "Bob USD", 80_000),
                                          ("Funding EUR", "Alice EUR", 120_000)):
            if accounts[customer].last_sequence == 0:
                ledger_transaction_post(tenant=tenant, actor=ACTOR, description=f"Opening balance {customer}",
                                        entries=[EntryInput(accounts[funding].id, "debit", amount),
                                                 EntryInput(accounts[customer].id, "credit", amount)])

    def _intents(self, tenant, accounts) -> None:
        """A few payments in several states, once: succeeded (settled, paid out), in review,
        processing (the sandbox settles it within seconds), awaiting confirmation, canceled."""
        if PaymentIntent.objects.filter(tenant=tenant).exists():
            return
        if not PolicyRule.objects.filter(tenant=tenant).exists():
            policy_rule_create(tenant=tenant, kind="amount_limit", currency="USD", actor=ACTOR, reason="demo",
                               params={"min": 100, "max": 5_000_000}, description="USD per payment")
            policy_rule_create(tenant=tenant, kind="risk_new_account", currency="USD", actor=ACTOR, reason="demo",
                               params={"amount_above": 100_000, "younger_than_days": 3650},
                               description="review USD payments over 1,000.00 from accounts under 10 years")
        alice, bob, shop = accounts["Alice USD"].id, accounts["Bob USD"].id, accounts["Demo Shop USD"].id

        def intent(amount, source):
            return payment_intent_create(tenant=tenant, amount=amount, currency="USD", source_account_id=source,
                                         destination_account_id=shop, actor=ACTOR)

        providers = list(Provider.objects.filter(tenant=tenant))

        def settle_delay(seconds: int) -> None:
            for provider in providers:
                provider_update(tenant=tenant, provider_id=provider.id, actor=ACTOR, reason="demo set-up",
                                settle_delay_seconds=seconds)

        settle_delay(0)  # the first payment settles right away
        settled = payment_intent_confirm(tenant=tenant, intent_id=intent(42_00, alice).id, actor=ACTOR)
        sandbox_settle_due()
        settle_delay(2)
        payment_intent_confirm(tenant=tenant, intent_id=intent(1_250_00, alice).id, actor=ACTOR)  # review
        payment_intent_confirm(tenant=tenant, intent_id=intent(19_99, bob).id, actor=ACTOR)  # processing
        intent(75_00, bob)  # awaiting confirmation
        payment_intent_cancel(tenant=tenant, intent_id=intent(10_00, bob).id, actor=ACTOR, reason="demo")
        if PaymentIntent.objects.get(pk=settled.id).status == "succeeded":
            payout_create(tenant=tenant, account_id=shop, amount=42_00, actor=ACTOR)

    def _api_key(self, tenant: Tenant, key_file: Path) -> str:
        """Keys are stored hashed, so the demo key is kept in var/ (git-ignored) to be shown again."""
        kept = demo_key_read(tenant, key_file)
        if kept is not None:
            return kept
        _, raw = api_key_create(tenant=tenant, name="demo", scope=ApiKey.SCOPE_WRITE, actor=ACTOR)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(raw + "\n")
        key_file.chmod(0o600)
        return raw
