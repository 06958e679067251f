"""Zentra's database layer: the tenant context every session carries (row-level security) and
the PostgreSQL backend that sets it inside each transaction (docs/security.md)."""
