"""The admin's index: a dashboard per role, over the tenants the user's roles reach.

Operators see what waits for them (the review queue, holds about to lapse or lapsed, disabled
endpoints and stuck deliveries, open circuits, approvals waiting for a second person, open
settlement breaks, the last verification and its breaks);
compliance reviewers see the refusals of the last day and recent changes; owners see their API
keys and members; everyone who may view sees postings and volume over the last week. Each tile
carries the link to the filtered list behind it. Charts are SVG drawn here: no script, no CDN.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from audit.approvals import approval_actions
from audit.models import AccessDenial, Approval
from ledger.currencies import format_minor
from ledger.models import (
    Account,
    Hold,
    LedgerEntry,
    LedgerTransaction,
    ReconciliationBreak,
    ReconciliationRun,
)
from payments.models import PaymentIntent, PolicyRule, Provider, ProviderRoute, SettlementReport
from tenants.models import ApiKey, Membership
from tenants.roles import EVIDENCE, MANAGE, OPERATE, VIEW
from tenants.selectors import tenant_ids_for_user
from webhooks.models import Delivery, WebhookEndpoint
from zentra.ids import id_floor

from ..templatetags.zentra import actor_name


@dataclass
class Tile:
    title: str
    value: str
    detail: str = ""
    url: str = ""
    tone: str = "ok"  # ok, attention, alarm
    wide: bool = False
    rows: list[tuple[str, str]] = field(default_factory=list)  # label, value
    links: list[tuple[str, str]] = field(default_factory=list)  # text, url


def _tenants(user: Any, perm: str) -> list[str] | None:
    """None: every tenant (the platform superuser)."""
    return None if user.is_superuser else sorted(tenant_ids_for_user(user, perm))


def _within(queryset: QuerySet[Any], tenants: list[str] | None, field_name: str = "tenant_id") -> QuerySet[Any]:
    return queryset if tenants is None else queryset.filter(**{f"{field_name}__in": tenants})


def _url(name: str, query: str = "", args: list[Any] | None = None) -> str:
    return reverse(name, args=args) + (f"?{query}" if query else "")


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = int((now - since).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def dashboard_for(user: Any) -> dict[str, Any]:
    now = timezone.now()
    sections: list[tuple[str, list[Tile]]] = []
    operate, evidence, manage, view = (_tenants(user, perm) for perm in (OPERATE, EVIDENCE, MANAGE, VIEW))
    if operate is None or operate:
        sections.append(("Waiting for an operator", _operations(operate, now)))
    if evidence is None or evidence:
        sections.append(("Evidence", _evidence(evidence, now)))
    if manage is None or manage:
        sections.append(("Access", _access(manage)))
    charts = _charts(view, now) if view is None or view else []
    return {"dashboard_sections": sections, "dashboard_charts": charts, "dashboard_now": now}


# --- operators ---------------------------------------------------------------------------------------

def _operations(tenants: list[str] | None, now: datetime) -> list[Tile]:
    tiles = []
    review = _within(PaymentIntent.objects.filter(status=PaymentIntent.REQUIRES_REVIEW), tenants).aggregate(
        count=Count("id"), oldest=Min("created_at"))
    tiles.append(Tile("Review queue", str(review["count"]), tone="attention" if review["count"] else "ok",
                      detail=f"oldest waiting {_age(review['oldest'], now)}" if review["count"] else "nothing waits",
                      url=_url("admin:payments_paymentintent_changelist", "status__exact=requires_review")))
    holds = _within(Hold.objects.filter(status=Hold.ACTIVE), tenants).aggregate(
        expiring=Count("id", filter=Q(expires_at__gt=now, expires_at__lte=now + timedelta(hours=24))),
        lapsed=Count("id", filter=Q(expires_at__lte=now)))
    tiles.append(Tile("Holds expiring within 24 h", str(holds["expiring"]),
                      tone="attention" if holds["lapsed"] else "ok",
                      detail=f"{holds['lapsed']} lapsed, waiting for the expiry job",
                      url=_url("admin:ledger_hold_changelist", "attention=expiring_day"),
                      links=[("lapsed holds", _url("admin:ledger_hold_changelist", "attention=lapsed"))]))
    endpoints = _within(WebhookEndpoint.objects.filter(deleted_at__isnull=True), tenants).aggregate(
        disabled=Count("id", filter=Q(status=WebhookEndpoint.DISABLED)))
    pending = _within(Delivery.objects.filter(status=Delivery.PENDING), tenants).aggregate(
        count=Count("id"), stale=Count("id", filter=Q(created_at__lte=now - timedelta(hours=1))))
    tiles.append(Tile("Webhooks", f"{endpoints['disabled']} disabled",
                      tone="alarm" if endpoints["disabled"] or pending["stale"] else "ok",
                      detail=f"{pending['count']} deliveries pending, {pending['stale']} for over an hour",
                      url=_url("admin:webhooks_webhookendpoint_changelist", "status__exact=disabled"),
                      links=[("pending deliveries",
                              _url("admin:webhooks_delivery_changelist", "status__exact=pending")),
                             ("pending for over an hour",
                              _url("admin:webhooks_delivery_changelist", "status__exact=pending&waiting=hour"))]))
    open_routes = list(_within(ProviderRoute.objects.filter(down_until__gt=now), tenants)
                       .select_related("provider").order_by("down_until")[:5])
    tiles.append(Tile("Open circuits", str(len(open_routes)), tone="alarm" if open_routes else "ok",
                      detail="every provider route is up" if not open_routes else "routes skipped until their cooldown",
                      url=_url("admin:payments_providerroute_changelist", "circuit=open"),
                      rows=[(f"{r.rail} via {r.provider.name}", f"until {r.down_until:%H:%M:%S}")
                            for r in open_routes]))
    tiles += _reconciliation(tenants, now)
    runs = list(_within(ReconciliationRun.objects.all(), tenants).select_related("tenant")
                .order_by("tenant_id", "-started_at").distinct("tenant_id")[:10])
    breaks = sum(run.breaks_count for run in runs)
    tiles.append(Tile("Ledger verification", f"{breaks} break{'s' if breaks != 1 else ''}",
                      tone="alarm" if breaks else "ok",
                      detail="last run per tenant" if runs else "no run yet: python manage.py verify_ledger",
                      url=_url("admin:ledger_reconciliationrun_changelist"),
                      rows=[(f"{run.tenant.slug}, {run.finished_at:%m-%d %H:%M}" if run.finished_at
                             else run.tenant.slug, f"{run.status}, {run.breaks_count} breaks") for run in runs],
                      links=[(f"the breaks {run.tenant.slug}'s last run found",
                              _url("admin:ledger_reconciliationrun_change", args=[run.id]))
                             for run in runs if run.breaks_count]))
    return tiles


def _reconciliation(tenants: list[str] | None, now: datetime) -> list[Tile]:
    """What waits for a second person, and what the providers' reports disagree on."""
    waiting = list(_within(Approval.objects.filter(status=Approval.PENDING, expires_at__gt=now), tenants,
                           "tenant_id").order_by("expires_at")[:5])
    count = _within(Approval.objects.filter(status=Approval.PENDING, expires_at__gt=now), tenants).count()
    labels = approval_actions()
    approvals = Tile("Approvals waiting", str(count), tone="attention" if count else "ok",
                     detail="proposed by one person, decided by another" if count else "nothing waits",
                     url=_url("admin:audit_approval_changelist", "state=waiting"),
                     rows=[(labels[a.action].label if a.action in labels else a.action,
                            f"by {actor_name(a.proposed_by)}, expires {a.expires_at:%m-%d %H:%M}") for a in waiting])
    open_breaks = _within(ReconciliationBreak.objects.filter(status=ReconciliationBreak.OPEN).exclude(report_id=""),
                          tenants)
    by_kind = list(open_breaks.values("kind").annotate(n=Count("id")).order_by("-n", "kind"))
    total = sum(row["n"] for row in by_kind)
    reports = _within(SettlementReport.objects.all(), tenants).select_related("provider")
    latest = reports.order_by("-id").first()
    breaks = Tile("Settlement breaks open", str(total), tone="alarm" if total else "ok",
                  detail=(f"last report: {latest.provider.name}, {latest.period_start:%m-%d}, {latest.lines} lines, "
                          f"{latest.breaks} breaks" if latest else "no settlement report yet"),
                  url=_url("admin:ledger_reconciliationbreak_changelist", "state=open&source=report"),
                  rows=[(row["kind"].replace("_", " "), str(row["n"])) for row in by_kind],
                  links=[("the last report", _url("admin:payments_settlementreport_change", args=[latest.pk]))
                         for latest in ([latest] if latest else [])]
                  + [("settlement reports", _url("admin:payments_settlementreport_changelist")),
                         ("open breaks assigned to me",
                          _url("admin:ledger_reconciliationbreak_changelist", "state=mine"))])
    return [approvals, breaks]


# --- compliance --------------------------------------------------------------------------------------

HISTORY_MODELS = (Account, Hold, PaymentIntent, ApiKey, Membership, WebhookEndpoint, PolicyRule, Provider,
                  ProviderRoute)


def _evidence(tenants: list[str] | None, now: datetime) -> list[Tile]:
    since = now - timedelta(hours=24)
    denials = AccessDenial.objects.filter(created_at__gte=since)
    if tenants is not None:
        denials = denials.filter(Q(tenant_id__in=tenants) | Q(target_tenant_id__in=tenants)
                                 | Q(actor_tenant_ids__overlap=tenants))
    rows = list(denials.values_list("reason", "actor", "actor_label")[:2000])
    by_reason = Counter(reason for reason, _, _ in rows).most_common(5)
    by_actor = Counter(label or actor for _, actor, label in rows).most_common(5)
    tiles = [Tile("Access denials, last 24 h", str(len(rows)), tone="attention" if rows else "ok", wide=bool(rows),
                  detail="by reason" if rows else "nobody was refused",
                  url=_url("admin:audit_accessdenial_changelist", "within=24h"),
                  rows=[(reason, str(n)) for reason, n in by_reason]
                  + [(f"by {who}", str(n)) for who, n in by_actor])]
    changes: list[tuple[datetime, str, str, str]] = []
    for model in HISTORY_MODELS:
        history = model.history.all()
        if tenants is not None:
            history = history.filter(tenant_id__in=tenants)
        for row in history.order_by("-history_date")[:8]:
            who = actor_name(row.history_actor) if row.history_actor else ""
            changes.append((row.history_date, str(model._meta.verbose_name), str(row.id),
                            row.get_history_type_display().lower() + (f" by {who}" if who else "")
                            + (f": {row.history_change_reason}" if row.history_change_reason else "")))
    changes.sort(reverse=True)
    tiles.append(Tile("Recent changes", str(len(changes[:8])), wide=True,
                      detail="history of accounts, holds, payments, keys, members, endpoints, rules and routes",
                      rows=[(f"{at:%m-%d %H:%M:%S} {label} {object_id}", what) for at, label, object_id, what
                            in changes[:8]]))
    return tiles


# --- owners ------------------------------------------------------------------------------------------

def _access(tenants: list[str] | None) -> list[Tile]:
    keys = list(_within(ApiKey.objects.all(), tenants).select_related("tenant")
                .order_by(F("last_used_at").desc(nulls_last=True), "-created_at")[:8])
    members = list(_within(Membership.objects.all(), tenants).select_related("user", "tenant")
                   .order_by("tenant__slug", "role", "user__username")[:12])
    return [
        Tile("API keys by last use", str(len(keys)), url=_url("admin:tenants_apikey_changelist"),
             rows=[(f"{k.tenant.slug} {k.name} ({k.scope})",
                    "revoked" if k.revoked_at else (f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"))
                   for k in keys]),
        Tile("Members", str(len(members)), url=_url("admin:tenants_membership_changelist"),
             rows=[(f"{m.tenant.slug} {m.user.get_username()}", m.role) for m in members]),
    ]


# --- charts ------------------------------------------------------------------------------------------

@dataclass
class Chart:
    title: str
    svg: str
    caption: str = ""


def _charts(tenants: list[str] | None, now: datetime) -> list[Chart]:
    since = (now - timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    postings = _within(LedgerTransaction.objects.filter(id__gte=id_floor("txn", since)), tenants)
    per_hour = dict(postings.annotate(hour=TruncHour("created_at")).values("hour").annotate(n=Count("id"))
                    .values_list("hour", "n"))
    hours = [since + timedelta(hours=h) for h in range(7 * 24 + 1)]
    charts = [Chart("Postings per hour, last 7 days",
                    bar_chart([per_hour.get(h, 0) for h in hours], [f"{h:%a %H:00}" for h in hours], day_ticks=hours),
                    caption=f"{sum(per_hour.values())} ledger transactions")]
    debits = _within(LedgerEntry.objects.filter(id__gte=id_floor("ent", since), direction="debit"), tenants)
    per_day: dict[str, dict[datetime, int]] = defaultdict(dict)
    for currency, day, total in (debits.annotate(day=TruncDay("created_at")).values("currency", "day")
                                 .annotate(total=Sum("amount")).values_list("currency", "day", "total")):
        per_day[currency][day] = int(total)
    days = [(now - timedelta(days=d)).replace(hour=0, minute=0, second=0, microsecond=0) for d in range(6, -1, -1)]
    for currency in sorted(per_day):
        values = [per_day[currency].get(day, 0) for day in days]
        charts.append(Chart(f"Volume per day, {currency}",
                            bar_chart(values, [f"{d:%a %m-%d}: {format_minor(v, currency)}"
                                               for d, v in zip(days, values, strict=True)],
                                      value_label=lambda v, c=currency: format_minor(v, c), day_labels=days),
                            caption=f"{format_minor(sum(values), currency)} moved in 7 days (debits of every posting)"))
    return charts


def bar_chart(values: list[int], labels: list[str], *, day_ticks: list[datetime] | None = None,
              day_labels: list[datetime] | None = None, value_label: Any = str, width: int = 640,
              height: int = 150) -> str:
    """A bar chart as inline SVG: one bar per value, a tooltip per bar, the maximum marked."""
    top = max(values) if values and max(values) > 0 else 1
    left, bottom, plot_h = 4, 20, height - 34
    step = (width - left - 4) / max(len(values), 1)
    bars = []
    for n, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = round(plot_h * value / top, 1)
        x = round(left + n * step, 1)
        bars.append(f'<rect x="{x}" y="{height - bottom - h}" width="{max(round(step - 1, 1), 1)}" height="{h}" '
                    f'class="bar"><title>{escape(label)}: {escape(str(value))}</title></rect>')
    ticks = []
    if day_ticks:
        for n, tick in enumerate(day_ticks):
            if tick.hour == 0:
                x = round(left + n * step, 1)
                ticks.append(f'<line x1="{x}" x2="{x}" y1="{height - bottom}" y2="{height - bottom + 4}" class="axis"/>'
                             f'<text x="{x + 2}" y="{height - 6}" class="tick">{tick:%a %d}</text>')
    if day_labels:
        for n, day in enumerate(day_labels):
            ticks.append(f'<text x="{round(left + n * step + 2, 1)}" y="{height - 6}" class="tick">{day:%a %d}</text>')
    peak = escape(value_label(max(values) if values else 0))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="zchart" '
            f'aria-label="bar chart, peak {peak}">'
            f'<line x1="{left}" x2="{width - 4}" y1="{height - bottom}" y2="{height - bottom}" class="axis"/>'
            f'<text x="{left}" y="11" class="tick">peak {peak}</text>{"".join(bars)}{"".join(ticks)}</svg>')


def line_chart(points: list[tuple[datetime, int]], *, value_label: Any = str, width: int = 640,
               height: int = 150) -> str:
    """A step line of a running balance as inline SVG: each point where an entry moved it."""
    values = [value for _, value in points]
    low, high = min(values + [0]), max(values + [0])
    span = (high - low) or 1
    left, bottom, top_pad = 4, 20, 16
    plot_h = height - bottom - top_pad
    step = (width - left - 4) / max(len(points) - 1, 1)

    def y(value: int) -> float:
        return round(height - bottom - plot_h * (value - low) / span, 1)

    path = []
    for n, (_, value) in enumerate(points):
        x = round(left + n * step, 1)
        path.append(f"{'M' if n == 0 else 'H'}{x} V{y(value)}" if n else f"M{x} {y(value)}")
    dots = "".join(f'<circle cx="{round(left + n * step, 1)}" cy="{y(v)}" r="2" class="dot"><title>'
                   f'{at:%Y-%m-%d %H:%M:%S}: {escape(value_label(v))}</title></circle>'
                   for n, (at, v) in enumerate(points))
    zero = f'<line x1="{left}" x2="{width - 4}" y1="{y(0)}" y2="{y(0)}" class="axis"/>'
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="zchart" '
            f'aria-label="balance over time">{zero}<path d="{" ".join(path)}" class="line"/>{dots}'
            f'<text x="{left}" y="11" class="tick">high {escape(value_label(high))}, low {escape(value_label(low))}'
            f'</text><text x="{left}" y="{height - 6}" class="tick">{points[0][0]:%Y-%m-%d %H:%M}</text>'
            f'<text x="{width - 4}" y="{height - 6}" class="tick" text-anchor="end">{points[-1][0]:%Y-%m-%d %H:%M}'
            f'</text></svg>')
