"""The ledger's writes. Every public function is one database transaction; only these move money.

accounts.py      open, freeze, unfreeze, close; the tenant's system accounts
postings.py      post_entries: one balanced ledger transaction inside the caller's unit
transfers.py     transfers and reversals asked for by clients and operators
holds.py         place, capture, release, expire
reconciliation.py  verification of the ledger against itself (verify_ledger, the nightly run)
"""
