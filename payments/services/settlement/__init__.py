"""Reconciliation with what providers report (../shared/API.md, Reconciliation; docs/reconciliation.md).

- records.py: the ledger's own record of each movement a provider books, written as it posts;
- parse.py: a settlement report's CSV, checked whole before anything is kept;
- reports.py: receiving a report and matching it, in set-based SQL, with its fees and breaks;
- sandbox_report.py: what the built-in sandbox providers report about themselves.
"""
