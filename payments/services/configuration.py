"""What decides and carries payments: policy rules, providers and routes, and their circuits.

Not money, but it moves money: every change goes through here, from the API or the admin,
is validated the same way, and leaves a history row naming who changed what and why.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction

from audit.actors import Actor, acting_as
from ledger import currencies
from tenants.models import Tenant
from tenants.selectors import Scope, tenant_object
from zentra.errors import NotFound, ValidationFailed

from ..errors import PolicyRuleConflict
from ..models import PolicyRule, Provider, ProviderRoute
from .settlement.sandbox_report import FAULTS

M = TypeVar("M", PolicyRule, Provider, ProviderRoute)

# The parameters each kind of rule takes: name -> (required, what it must be).
RULE_PARAMS: dict[str, dict[str, tuple[bool, str]]] = {
    PolicyRule.AMOUNT_LIMIT: {"min": (False, "amount"), "max": (False, "amount")},
    PolicyRule.VELOCITY_ACCOUNT: {"max_per_day": (True, "amount")},
    PolicyRule.VELOCITY_CUSTOMER: {"max_per_day": (True, "amount")},
    PolicyRule.RISK_NEW_ACCOUNT: {"amount_above": (True, "count"), "younger_than_days": (True, "number")},
    PolicyRule.ROUTING: {"routes": (True, "routes"), "amount_max": (False, "amount_or_null")},
}
_MESSAGES = {
    "amount": "Must be a JSON integer of minor units, at least 1.",
    "amount_or_null": "Must be a JSON integer of minor units (at least 1) or null.",
    "count": "Must be a JSON integer, 0 or more.",
    "number": "Must be a JSON number, 0 or more.",
    "routes": "Must be a non-empty list of route ids (rte_...).",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _param_ok(kind: str, value: Any) -> bool:
    if kind == "amount":
        return _is_int(value) and value >= 1
    if kind == "amount_or_null":
        return value is None or (_is_int(value) and value >= 1)
    if kind == "count":
        return _is_int(value) and value >= 0
    if kind == "number":
        return (_is_int(value) or isinstance(value, float)) and value >= 0
    if kind == "routes":
        return isinstance(value, list) and bool(value) and all(isinstance(r, str) for r in value)
    raise AssertionError(kind)


def policy_rule_check(*, tenant: Tenant, kind: str, params: Any, currency: str = "", rail: str = "") -> None:
    """Refuse a rule the engine could not evaluate, naming every field at fault
    (`params.max`, ...): a rule is checked when it is saved, never when a payment meets it."""
    errors: list[dict[str, str]] = []
    if kind not in RULE_PARAMS:
        errors.append({"field": "kind", "message": f"Must be one of {', '.join(PolicyRule.KIND_ORDER)}."})
    if currency and not currencies.is_supported(currency):
        errors.append({"field": "currency", "message": "Not a supported ISO 4217 code (or empty for every currency)."})
    if len(rail) > 30:
        errors.append({"field": "rail", "message": "At most 30 characters."})
    if not isinstance(params, dict):
        errors.append({"field": "params", "message": "Must be a JSON object."})
    elif kind in RULE_PARAMS:
        spec = RULE_PARAMS[kind]
        for name in sorted(set(params) - set(spec)):
            errors.append({"field": f"params.{name}", "message": f"Not a parameter of {kind}; it takes "
                                                                 f"{', '.join(sorted(spec))}."})
        for name, (required, expected) in spec.items():
            if name not in params:
                if required:
                    errors.append({"field": f"params.{name}", "message": "Required."})
            elif not _param_ok(expected, params[name]):
                errors.append({"field": f"params.{name}", "message": _MESSAGES[expected]})
        if kind == PolicyRule.AMOUNT_LIMIT and not errors:
            if "min" not in params and "max" not in params:
                errors.append({"field": "params", "message": "Give min, max or both."})
            elif "min" in params and "max" in params and params["min"] > params["max"]:
                errors.append({"field": "params.min", "message": "Must not exceed max."})
    if errors:
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    if kind == PolicyRule.ROUTING:
        # Well formed, but naming routes the tenant does not have: like any unknown id, a 404.
        unknown = sorted(set(params["routes"]) - set(
            ProviderRoute.objects.filter(tenant=tenant, pk__in=params["routes"]).values_list("id", flat=True)))
        if unknown:
            raise NotFound(f"params.routes: no such route {', '.join(unknown)}",
                           errors=[{"field": "params.routes", "message": f"No such route: {', '.join(unknown)}."}])


RULE_FIELDS = ("kind", "position", "enabled", "currency", "rail", "params", "description")


def policy_rule_create(*, tenant: Tenant, kind: str, params: dict[str, Any], actor: Actor, reason: str = "",
                       position: int = 100, enabled: bool = True, currency: str = "", rail: str = "",
                       description: str = "") -> PolicyRule:
    policy_rule_check(tenant=tenant, kind=kind, params=params, currency=currency, rail=rail)
    with transaction.atomic(), acting_as(actor):
        rule = PolicyRule(tenant=tenant, kind=kind, params=params, position=position, enabled=enabled,
                          currency=currency, rail=rail, description=description)
        rule.full_clean()
        rule._change_reason = reason or "created"  # type: ignore[attr-defined]
        rule.save()
        return rule


def policy_rule_update(*, tenant: Tenant, rule_id: str, actor: Actor, reason: str = "",
                       **changes: Any) -> PolicyRule:
    """Change some of a rule's fields (kind, position, enabled, currency, rail, params,
    description); the rule as a whole is checked again."""
    def check(rule: PolicyRule) -> None:
        try:
            policy_rule_check(tenant=tenant, kind=rule.kind, params=rule.params, currency=rule.currency,
                              rail=rule.rail)
        except ValidationFailed as exc:
            if ("kind" in changes) == ("params" in changes):
                raise
            # Only one of the pair was given: what refuses it is the other, as the rule has it.
            given, kept = ("kind", "params") if "kind" in changes else ("params", "kind")
            raise PolicyRuleConflict(f"The {given} given does not fit the rule's {kept} ({rule.kind} rule): "
                                     f"{exc.detail}", errors=exc.errors) from exc

    return _change(PolicyRule, tenant=tenant, object_id=rule_id, actor=actor, reason=reason, changes=changes,
                   allowed=RULE_FIELDS, label="policy rule", check=check)


def _change(model: type[M], *, tenant: Tenant, object_id: str, actor: Actor, reason: str, changes: dict[str, Any],
            allowed: tuple[str, ...], label: str, check: Callable[[M], None] | None = None) -> M:
    """The one way configuration changes: only known fields, on the tenant's row, locked,
    checked whole, saved with the reason in its history."""
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValidationFailed(f"Unknown fields {', '.join(unknown)}",
                               errors=[{"field": name, "message": "Unknown field."} for name in unknown])
    with transaction.atomic(), acting_as(actor):
        obj = tenant_object(model, object_id, scope=Scope.of_tenant(tenant.id, actor), action=f"change {label}",
                            label=label, lock=True)
        for name, value in changes.items():
            setattr(obj, name, value)
        if check is not None:
            check(obj)
        obj.full_clean()
        obj._change_reason = reason or "changed"  # type: ignore[attr-defined]
        obj.save()
        return obj


# --- providers and routes --------------------------------------------------------------------

def provider_create(*, tenant: Tenant, name: str, actor: Actor, reason: str, mode: str = Provider.APPROVE,
                    outage: bool = False, settle_delay_seconds: int = 2) -> Provider:
    """A sandbox provider of the tenant, with its own event-signing secret."""
    with transaction.atomic(), acting_as(actor):
        if Provider.objects.filter(tenant=tenant, name=name).exists():
            raise ValidationFailed(f"The tenant already has a provider named {name!r}",
                                   errors=[{"field": "name", "message": "Already taken in this tenant."}])
        provider = Provider(tenant=tenant, name=name, mode=mode, outage=outage,
                            settle_delay_seconds=settle_delay_seconds, secret="prvsec_" + secrets.token_urlsafe(32))
        provider.full_clean()
        provider._change_reason = reason or "created"  # type: ignore[attr-defined]
        provider.save()
        return provider


PROVIDER_FIELDS = ("mode", "outage", "settle_delay_seconds", "report_faults")


def _provider_check(provider: Provider) -> None:
    faults = provider.report_faults
    if not isinstance(faults, list) or any(fault not in FAULTS for fault in faults):
        raise ValidationFailed(f"report_faults must be a list of {', '.join(FAULTS)}",
                               errors=[{"field": "report_faults", "message": f"A list of {', '.join(FAULTS)}."}])


def provider_update(*, tenant: Tenant, provider_id: str, actor: Actor, reason: str, **changes: Any) -> Provider:
    """Change how a sandbox provider behaves (mode, outage, settlement delay, report faults)."""
    return _change(Provider, tenant=tenant, object_id=provider_id, actor=actor, reason=reason, changes=changes,
                   allowed=PROVIDER_FIELDS, label="provider", check=_provider_check)


ROUTE_FIELDS = ("provider_id", "rail", "priority", "currencies", "enabled", "failure_threshold", "cooldown_seconds")


def _route_check(tenant: Tenant, route: ProviderRoute) -> None:
    errors = []
    if not Provider.objects.filter(tenant=tenant, pk=route.provider_id).exists():
        errors.append({"field": "provider", "message": "No such provider in this tenant."})
    if not isinstance(route.currencies, list) or not all(
            isinstance(c, str) and currencies.is_supported(c) for c in route.currencies):
        errors.append({"field": "currencies", "message": 'A list of ISO 4217 codes such as ["USD", "EUR"] '
                                                         "(empty: every currency)."})
    if route.failure_threshold < 1:
        errors.append({"field": "failure_threshold", "message": "At least 1."})
    if errors:
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


def route_create(*, tenant: Tenant, provider_id: str, actor: Actor, reason: str, rail: str = "card",
                 priority: int = 100, currencies: list[str] | None = None, enabled: bool = True,
                 failure_threshold: int = 3, cooldown_seconds: int = 60) -> ProviderRoute:
    with transaction.atomic(), acting_as(actor):
        route = ProviderRoute(tenant=tenant, provider_id=provider_id, rail=rail, priority=priority,
                              currencies=currencies or [], enabled=enabled, failure_threshold=failure_threshold,
                              cooldown_seconds=cooldown_seconds)
        _route_check(tenant, route)
        route.full_clean()
        route._change_reason = reason or "created"  # type: ignore[attr-defined]
        route.save()
        return route


def route_update(*, tenant: Tenant, route_id: str, actor: Actor, reason: str, **changes: Any) -> ProviderRoute:
    return _change(ProviderRoute, tenant=tenant, object_id=route_id, actor=actor, reason=reason, changes=changes,
                   allowed=ROUTE_FIELDS, label="route", check=lambda route: _route_check(tenant, route))


def route_circuit_close(*, tenant: Tenant, route_id: str, actor: Actor, reason: str) -> ProviderRoute:
    """Mark a route up again before its cooldown ends (an operator knows the provider is back)."""
    if not reason.strip():
        raise ValidationFailed("Closing a circuit needs a reason", errors=[{"field": "reason", "message": "Required."}])
    with transaction.atomic(), acting_as(actor):
        route = tenant_object(ProviderRoute, route_id, scope=Scope.of_tenant(tenant.id, actor),
                              action="close circuit", label="route", lock=True)
        route.consecutive_failures, route.down_until = 0, None
        route._change_reason = f"circuit closed: {reason}"[:500]  # type: ignore[attr-defined]
        route.save(update_fields=["consecutive_failures", "down_until"])
        return route
