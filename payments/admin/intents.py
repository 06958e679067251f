"""Back office for payments: the review queue, one page per intent with everything that
decided and carried it, and payouts."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from backoffice.templatetags.zentra import actor_name, idlink, json_table, linkify
from ledger.admin.filters import CurrencyListFilter
from ledger.models import LedgerTransaction
from tenants.admin_base import TenantScopedAdmin, account_label_of
from webhooks.models import Event

from ..models import PaymentIntent, Payout, PolicyDecision
from ..services.approvals import review_approve_or_propose
from ..services.intents import payment_intent_decline


def _table(headers: list[str], rows: list[tuple]) -> str:
    """A small read-only table; cells are text (escaped) or already-safe HTML (links, tables)."""
    if not rows:
        return "—"
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join("", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((c,) for c in row)),)
                                                 for row in rows))
    return format_html('<table class="zinline"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


@admin.register(PaymentIntent)
class PaymentIntentAdmin(TenantScopedAdmin):
    list_display = ["id", "amount_shown", "status", "source_label", "destination_label", "tenant",
                    "created_at"]
    list_filter = ["status", CurrencyListFilter]
    search_fields = ["=id", "=source_account__id", "=destination_account__id", "provider_reference"]
    list_select_related = ["tenant", "source_account", "destination_account"]
    readonly_fields = ["id", "tenant", "amount_shown", "status", "source_account", "destination_account", "rail",
                       "hold", "route", "provider_reference", "failure_reason", "metadata_table", "created_at",
                       "transitions_shown", "decisions_shown", "attempts_shown", "ledger_shown", "events_shown"]
    fields = readonly_fields
    actions = ["approve", "decline"]

    @admin.display(description="from", ordering="source_account__name")
    def source_label(self, obj):
        return account_label_of(obj.source_account)

    @admin.display(description="to", ordering="destination_account__name")
    def destination_label(self, obj):
        return account_label_of(obj.destination_account)

    @admin.display(description="transitions")
    def transitions_shown(self, obj):
        return _table(["at", "from", "to", "by", "reason"], [
            (f"{t.at:%Y-%m-%d %H:%M:%S}", t.from_status or "·", t.to_status, actor_name(t.actor), t.reason)
            for t in obj.transitions.order_by("at", "id")])

    @admin.display(description="policy decisions")
    def decisions_shown(self, obj):
        return _table(["rule", "outcome", "reason", "inputs it saw"], [
            (format_html("{} {}", d.rule_kind, idlink(d.rule_id)) if d.rule_id else d.rule_kind, d.outcome,
             linkify(d.reason), json_table(d.inputs))
            for d in PolicyDecision.objects.filter(intent_id=obj.id).order_by("id")])

    @admin.display(description="provider attempts")
    def attempts_shown(self, obj):
        return _table(["at", "route", "provider", "outcome", "latency", "error or reference"], [
            (f"{a.created_at:%H:%M:%S}", idlink(a.route_id), a.provider.name, a.outcome, f"{a.latency_ms} ms",
             a.error or a.reference) for a in obj.provider_attempts.select_related("provider").order_by("id")])

    @admin.display(description="ledger transactions")
    def ledger_shown(self, obj):
        txns = LedgerTransaction.objects.filter(payment_intent_id=obj.id)
        if obj.hold_id:
            txns = txns | LedgerTransaction.objects.filter(hold_id=obj.hold_id)
        return _table(["at", "transaction", "kind", "description"], [
            (f"{t.created_at:%H:%M:%S}", idlink(t.id), t.kind, linkify(t.description))
            for t in txns.order_by("created_at")])

    @admin.display(description="events")
    def events_shown(self, obj):
        return _table(["at", "event", "type"], [
            (f"{e.created_at:%H:%M:%S}", idlink(e.id), e.type)
            for e in Event.objects.filter(resource_id=obj.id).order_by("id")])

    @admin.action(description="Approve selected intents in review", permissions=["operate"])
    def approve(self, request, queryset):
        # Above the tenant's threshold, an approval waits for a second person (tenants/approval_rules.py).
        return self.confirm_and_apply(request, queryset, title="Approve payment intents", verb="approve",
                                      apply=lambda i, values, actor: review_approve_or_propose(
                                          tenant=i.tenant, intent_id=i.id, actor=actor, reason=values["reason"]))

    @admin.action(description="Decline selected intents in review", permissions=["operate"])
    def decline(self, request, queryset):
        return self.confirm_and_apply(request, queryset, title="Decline payment intents", verb="decline",
                                      apply=lambda i, values, actor: payment_intent_decline(
                                          tenant=i.tenant, intent_id=i.id, actor=actor, reason=values["reason"]))


@admin.register(Payout)
class PayoutAdmin(TenantScopedAdmin):
    list_display = ["id", "account_label", "amount_shown", "status", "provider", "created_at", "tenant"]
    list_select_related = ["tenant", "account", "provider"]
    list_filter = ["status", CurrencyListFilter]
    search_fields = ["=id", "=account__id"]
    readonly_fields = ["id", "tenant", "account", "amount_shown", "status", "provider", "failure_reason",
                       "metadata_table", "created_at", "resolved_at"]
    fields = readonly_fields

