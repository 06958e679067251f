"""Payment intents from confirmation to settlement and payout: the policy engine, provider
routes with failover and circuit breakers, signed provider events, and the sandbox providers.

Beyond the standard modules (models, services/, selectors, shapes, api/, admin/, tasks,
migrations), the root holds: adapters.py (what a provider is asked, and how its events are
signed) and errors.py."""
