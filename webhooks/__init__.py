"""Events (the outbox) and their signed delivery to webhook endpoints, with retries and replay.

Beyond the standard modules (models, services/, selectors, shapes, api/, admin, tasks,
migrations), the root holds: event_types.py (every type emitted), signing.py (Standard
Webhooks signatures), addresses.py (where a webhook may go)."""
