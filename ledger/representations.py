"""Plain-dict shapes of ledger objects, as the API shows them.

Built by hand rather than through DRF field machinery: a posting writes this payload into
its event inside the locked section, so it must cost microseconds. The API's output
serializers delegate here, so the event payload and the API body cannot drift apart.
"""

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def transaction_entry_payload(entry) -> dict:
    return {"id": entry.id, "account": entry.account_id, "direction": entry.direction, "amount": entry.amount,
            "currency": entry.currency, "balance_after": entry.balance_after, "sequence": entry.sequence}


def transaction_payload(txn, *, entries, reversed_by: str | None) -> dict:
    return {
        "id": txn.id, "object": "transaction", "status": "posted", "kind": txn.kind, "description": txn.description,
        "entries": [transaction_entry_payload(e) for e in sorted(entries, key=lambda e: e.id)],
        "reverses": txn.reverses_id, "reversed_by": reversed_by, "metadata": txn.metadata,
        "created_at": iso(txn.created_at), "effective_at": iso(txn.effective_at),
    }
