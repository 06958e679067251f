"""Evidence: who acted, and what every refusal and every API call left behind.

Beyond the standard modules (models, services, admin, migrations), the root holds:
actors.py (who acted), context.py (the request being served), history.py (simple-history
plumbing), logs.py (JSON log lines naming their request), middleware.py (operators act as
themselves), routers.py (evidence rows on their own database connection)."""
