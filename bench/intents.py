"""Payment intents confirmed and settled per second through the services (sandbox provider
with zero delay), at 1 and N processes, beside the raw posting baseline."""

from __future__ import annotations

import multiprocessing
import time

import postings
from common import configure_django


def _intents_worker(args) -> int:
    tenant_id, source_id, merchant_id, seconds = args
    configure_django()
    from audit.actors import Actor
    from payments.adapters import sandbox_event_body, sign_event
    from payments.models import Provider
    from payments.services.intents import payment_intent_confirm, payment_intent_create
    from payments.services.provider_events import provider_event_receive
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    actor = Actor.system("bench")
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        intent = payment_intent_create(tenant=tenant, amount=100, currency="USD", source_account_id=source_id,
                                       destination_account_id=merchant_id, actor=actor)
        intent = payment_intent_confirm(tenant=tenant, intent_id=intent.id, actor=actor)
        provider = Provider.objects.get(pk=intent.route.provider_id)
        body = sandbox_event_body(event_type="payment.settled", intent=intent)
        provider_event_receive(provider_id=provider.id, body=body, signature=sign_event(provider.secret, body))
        done += 1
    return done


def run(tenant, processes_list=(1, 4), seconds: float = 8.0) -> list[dict]:
    from audit.actors import Actor
    from ledger.services.shards import account_shards_set
    from payments.models import Provider

    Provider.objects.filter(tenant=tenant).update(settle_delay_seconds=0, outage=False, mode=Provider.APPROVE)
    results = []
    for processes in processes_list:
        sources, merchant_id = postings.funded_customers(tenant, f"intents {processes}", processes)
        # Every settlement credits the one merchant: spread it, as an operator marks a busy
        # merchant high-volume (docs/architecture.md, Money: hot accounts).
        account_shards_set(tenant=tenant, account_id=merchant_id, shards=8, actor=Actor.system("bench"),
                           reason="bench: one merchant takes every settlement")
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(processes) as pool:
            counts = pool.map(_intents_worker, [(tenant.id, s, merchant_id, seconds) for s in sources])
        raw = postings.rate(postings._raw_worker, tenant.id, postings.make_accounts(tenant, f"intents-raw{processes}"),
                            processes, seconds)
        rate = sum(counts) / seconds
        results.append({"processes": processes, "intents": rate, "raw": raw, "ratio": rate / raw})
    return results
