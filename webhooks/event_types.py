"""Every event type Zentra emits. Endpoint filters name these, or a family (`hold.*`), or `*`."""

EVENT_TYPES = frozenset({
    "account.created", "account.frozen", "account.unfrozen", "account.closed", "account.sharded",
    "transaction.posted", "transaction.reversed",
    "hold.created", "hold.captured", "hold.released", "hold.expired",
    "webhook_endpoint.disabled", "webhook_endpoint.test", "webhook_delivery.failed",
    "payment_intent.created", "payment_intent.processing", "payment_intent.requires_review",
    "payment_intent.succeeded", "payment_intent.failed", "payment_intent.canceled",
    "payout.created", "payout.paid", "payout.failed",
    "settlement_report.matched", "settlement_report.failed",
})
FAMILIES = frozenset(t.split(".", 1)[0] for t in EVENT_TYPES)


def pattern_is_known(pattern: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return pattern[:-2] in FAMILIES
    return pattern in EVENT_TYPES


def subscription_patterns(event_type: str) -> list[str]:
    """The filter entries that subscribe an endpoint to `event_type`: "*", the type itself, or
    its family ("hold.*"). An endpoint is subscribed when its filter holds any of them."""
    return ["*", event_type, event_type.split(".", 1)[0] + ".*"]
