"""How the back office shows things: money in major units with its code, ids as links, actors
by name, JSON as key/value tables."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from django import template
from django.contrib.auth import get_user_model
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from audit.models import Approval
from ledger.currencies import format_minor
from tenants.models import ApiKey

register = template.Library()

# Where each kind of id lives in the admin. Request ids open their trace.
ID_PAGES = {
    "acct": "admin:ledger_account_change", "txn": "admin:ledger_ledgertransaction_change",
    "ent": "admin:ledger_ledgerentry_change", "hold": "admin:ledger_hold_change",
    "pi": "admin:payments_paymentintent_change", "po": "admin:payments_payout_change",
    "rte": "admin:payments_providerroute_change", "prv": "admin:payments_provider_change",
    "pol": "admin:payments_policyrule_change", "evt": "admin:webhooks_event_change",
    "del": "admin:webhooks_delivery_change", "we": "admin:webhooks_webhookendpoint_change",
    "req": "admin:trace", "rec": "admin:ledger_reconciliationrun_change",
    "srp": "admin:payments_settlementreport_change", "brk": "admin:ledger_reconciliationbreak_change",
    "apr": "admin:audit_approval_change", "per": "admin:ledger_ledgerperiod_change",
    "exp": "admin:backoffice_evidenceexport_change",
}
TRACEABLE = {"req", "pi", "hold", "txn", "acct", "po", "evt", "del"}
ID_PATTERN = re.compile(r"\b(" + "|".join(sorted(ID_PAGES, key=len, reverse=True)) + r")_[0-9A-Za-z]{10,40}\b")


_SLOT = "ZENTRAIDSLOT"
_url_patterns: dict[tuple[str, str], str | None] = {}


def id_url(object_id: str) -> str | None:
    """The page of an id. Each kind's URL is reversed once (per script prefix) and the id put
    in its place: a trace shows hundreds of ids, and reverse() is the costly part of a link."""
    prefix = object_id.split("_", 1)[0]
    name = ID_PAGES.get(prefix)
    if name is None:
        return None
    key = (name, get_script_prefix())
    if key not in _url_patterns:
        try:
            _url_patterns[key] = reverse(name, args=[_SLOT])
        except NoReverseMatch:
            _url_patterns[key] = None
    pattern = _url_patterns[key]
    return pattern.replace(_SLOT, quote(object_id, safe="")) if pattern else None


@register.filter
def idlink(object_id: Any) -> str:
    """An id as a link to its page (a request id to its trace)."""
    text = "" if object_id is None else str(object_id)
    url = id_url(text) if text else None
    return format_html('<a href="{}" class="zid">{}</a>', url, text) if url else escape(text)


@register.filter
def namedlink(object_id: Any, name: Any) -> str:
    """A link to an object's page that reads as its name (the id in its tooltip)."""
    text = "" if object_id is None else str(object_id)
    url = id_url(text) if text else None
    label = str(name) if name else text
    return format_html('<a href="{}" class="zid" title="{}">{}</a>', url, text, label) if url else escape(label)


@register.filter
def linkify(text: Any) -> SafeString:
    """Every id inside a text becomes a link; the rest is escaped."""
    escaped = str(escape("" if text is None else str(text)))
    return mark_safe(ID_PATTERN.sub(lambda m: str(idlink(m.group(0))), escaped))  # noqa: S308 (escaped above)


@register.simple_tag
def money(amount: Any, currency: str) -> str:
    """1234567 USD -> 12,345.67 USD (the API keeps minor units; people read major ones)."""
    return format_minor(None if amount is None else int(amount), currency)


@register.filter
def humanize_kind(kind: Any) -> str:
    return str(kind).replace("_", " ")


@register.filter
def traceable(object_id: Any) -> bool:
    return str(object_id).split("_", 1)[0] in TRACEABLE


_actor_names: dict[str, str] = {}


def actor_name(actor: str) -> str:
    """`user:2` -> `demo-operator`, `api_key:key_...` -> the key's name, `approval:apr_...` -> who
    proposed and who approved (a label for people; the evidence keeps the stable id)."""
    if actor in _actor_names:
        return _actor_names[actor]
    kind, _, ident = actor.partition(":")
    name = ""
    if kind == "user" and ident.isdigit():
        name = get_user_model().objects.filter(pk=int(ident)).values_list("username", flat=True).first() or ""
    elif kind == "api_key":
        name = ApiKey.objects.filter(pk=ident).values_list("name", flat=True).first() or ""
        name = f"key {name}" if name else ""
    elif kind == "system":
        name = f"{ident} (system)"
    elif kind == "approval":  # an approved action: both people, and the approval itself
        people = Approval.objects.filter(pk=ident).values_list("proposed_by", "decided_by").first()
        if people and people[1]:
            name = f"{actor_name(people[0])}, approved by {actor_name(people[1])} ({ident})"
    label = name or actor
    if len(_actor_names) > 5000:
        _actor_names.clear()
    _actor_names[actor] = label
    return label


@register.filter
def actor(value: Any) -> str:
    return actor_name(str(value)) if value else "—"


def json_table(value: Any) -> SafeString:
    """A JSON value as a key/value table (nested objects as nested tables)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return escape(value)
    if isinstance(value, dict):
        if not value:
            return mark_safe('<span class="quiet">—</span>')
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>",
                                ((key, json_table(item)) for key, item in value.items()))
        return format_html('<table class="zjson">{}</table>', rows)
    if isinstance(value, list):
        if not value:
            return mark_safe('<span class="quiet">—</span>')
        if all(not isinstance(item, (dict, list)) for item in value):
            return linkify(", ".join("null" if item is None else str(item) for item in value))
        return format_html_join("", "<div>{}</div>", ((json_table(item),) for item in value))
    if value is None:
        return mark_safe('<span class="quiet">null</span>')
    return linkify(value)


register.filter("json_table", json_table)
