"""The policy engine: per-tenant rules evaluated in a fixed order inside the confirming
transaction: amount limits, velocity per account and per customer, risk (to review), then
routing. Every rule evaluated leaves a PolicyDecision; the first denial stops evaluation.

Velocity is computed while the source account row is locked (and, per customer, under a
transaction-scoped advisory lock), so parallel confirmations cannot both fit under a limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from ledger.models import Account

from ..models import PaymentIntent, PolicyRule, ProviderRoute

COMMITTED_STATUSES = [PaymentIntent.REQUIRES_REVIEW, PaymentIntent.PROCESSING, PaymentIntent.SUCCEEDED]


@dataclass
class Verdict:
    outcome: str = "allow"  # allow, deny or review
    reason: str = ""
    routes: list[str] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)

    def record(self, rule: PolicyRule | None, kind: str, outcome: str, reason: str, inputs: dict) -> None:
        self.decisions.append({"rule_id": rule.id if rule else "", "rule_kind": kind, "outcome": outcome,
                               "reason": reason, "inputs": inputs})


def _applies(rule: PolicyRule, intent: PaymentIntent) -> bool:
    return rule.currency in ("", intent.currency) and rule.rail in ("", intent.rail)


def _midnight() -> datetime:
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)


def _spent_today(intents: QuerySet[PaymentIntent]) -> int:
    # Counted by when each was confirmed (its hold was placed), not when it was created: an
    # intent prepared yesterday and confirmed today spends today's limit.
    total = intents.filter(hold__created_at__gte=_midnight(), status__in=COMMITTED_STATUSES).aggregate(
        total=Sum("amount"))["total"]
    return int(total or 0)


def lock_customer_velocity(tenant_id: str, customer: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"velocity:{tenant_id}:{customer}"])


def policy_evaluate(*, intent: PaymentIntent, source: Account) -> Verdict:
    """Decide allow / deny / review and the ordered routes. The caller holds the source row lock.

    Rules are checked when they are saved (services/configuration.py). One that reached the
    table some other way and cannot be evaluated denies the payment, with its reason in the
    evidence, rather than failing the request."""
    verdict = Verdict()
    current: list[PolicyRule] = []
    try:
        return _evaluate(intent=intent, source=source, verdict=verdict, current=current)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        rule = current[-1] if current else None
        verdict.record(rule, rule.kind if rule else "policy", "deny",
                       f"rule {rule.id if rule else '?'} has parameters the engine cannot use ({exc}); correct it",
                       {"params": rule.params if rule else None})
        return _deny(verdict)


def _evaluate(*, intent: PaymentIntent, source: Account, verdict: Verdict, current: list[PolicyRule]) -> Verdict:
    rules = sorted((r for r in PolicyRule.objects.filter(tenant_id=intent.tenant_id, enabled=True)
                    if _applies(r, intent)),
                   key=lambda r: (PolicyRule.KIND_ORDER.index(r.kind), r.position, r.id))
    others = PaymentIntent.objects.filter(tenant_id=intent.tenant_id).exclude(pk=intent.pk)
    for rule in rules:
        current.append(rule)
        params = rule.params or {}
        if rule.kind == PolicyRule.AMOUNT_LIMIT:
            low, high = params.get("min"), params.get("max")
            inputs = {"amount": intent.amount, "min": low, "max": high}
            if (low is not None and intent.amount < low) or (high is not None and intent.amount > high):
                verdict.record(rule, rule.kind, "deny", f"amount {intent.amount} outside [{low}, {high}]", inputs)
                return _deny(verdict)
            verdict.record(rule, rule.kind, "allow", "amount within limits", inputs)
        elif rule.kind in (PolicyRule.VELOCITY_ACCOUNT, PolicyRule.VELOCITY_CUSTOMER):
            limit = params.get("max_per_day")
            if rule.kind == PolicyRule.VELOCITY_ACCOUNT:
                scope, spent = source.id, _spent_today(others.filter(source_account=source))
            else:
                if not source.customer:
                    verdict.record(rule, rule.kind, "allow", "source account has no customer", {})
                    continue
                lock_customer_velocity(intent.tenant_id, source.customer)
                scope = source.customer
                spent = _spent_today(others.filter(source_account__customer=source.customer))
            inputs = {"scope": scope, "spent_today": spent, "amount": intent.amount, "max_per_day": limit}
            if limit is not None and spent + intent.amount > limit:
                verdict.record(rule, rule.kind, "deny", f"{spent} already today; {intent.amount} more exceeds {limit}",
                               inputs)
                return _deny(verdict)
            verdict.record(rule, rule.kind, "allow", "within the daily limit", inputs)
        elif rule.kind == PolicyRule.RISK_NEW_ACCOUNT:
            threshold, days = params.get("amount_above", 0), params.get("younger_than_days", 0)
            age_days = (timezone.now() - source.created_at) / timedelta(days=1)
            inputs = {"amount": intent.amount, "amount_above": threshold, "account_age_days": round(age_days, 3),
                      "younger_than_days": days}
            if intent.amount > threshold and age_days < days:
                verdict.record(rule, rule.kind, "review", "large amount from a new account", inputs)
                verdict.outcome, verdict.reason = "review", f"rule {rule.id}: large amount from a new account"
            else:
                verdict.record(rule, rule.kind, "allow", "no risk signal", inputs)
        elif rule.kind == PolicyRule.ROUTING and not verdict.routes:
            amount_max = params.get("amount_max")
            if amount_max is not None and intent.amount > amount_max:
                continue
            wanted = [r for r in params.get("routes", []) if isinstance(r, str)]
            usable = set(_usable_routes(intent).filter(pk__in=wanted).values_list("id", flat=True))
            verdict.routes = [r for r in wanted if r in usable]
            verdict.record(rule, rule.kind, "route", f"routes {verdict.routes}", {"wanted": wanted})
    if not verdict.routes:
        verdict.routes = list(_usable_routes(intent).values_list("id", flat=True))
        verdict.record(None, "routing", "route", f"default routing by priority: {verdict.routes}", {})
    if not verdict.routes:
        verdict.record(None, "routing", "deny", f"no enabled route for {intent.currency}"
                       + (f" on rail {intent.rail}" if intent.rail else ""), {})
        return _deny(verdict)
    return verdict


def _usable_routes(intent: PaymentIntent) -> QuerySet[ProviderRoute]:
    routes = ProviderRoute.objects.filter(tenant_id=intent.tenant_id, enabled=True).filter(
        Q(currencies=[]) | Q(currencies__contains=[intent.currency])).order_by("priority", "id")
    return routes.filter(rail=intent.rail) if intent.rail else routes


def _deny(verdict: Verdict) -> Verdict:
    verdict.outcome = "deny"
    verdict.reason = verdict.decisions[-1]["reason"]
    return verdict
