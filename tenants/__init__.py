"""Tenants, their members and API keys, and which tenants an actor may reach.

Beyond the standard modules (models, services/, selectors, admin, migrations), the root holds:
roles.py (roles as guardian permissions on the tenant), keys.py (the API key format),
errors.py, and admin_base.py (the tenant-scoped base of every admin page)."""
