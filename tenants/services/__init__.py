"""Writes on tenants, memberships and API keys. Each is one transaction and names its actor."""
