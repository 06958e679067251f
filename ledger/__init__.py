"""The double-entry ledger: accounts, balanced postings, holds, and its own verification.

Beyond the standard modules (models, services/, selectors, shapes, api/, admin/, tasks,
migrations), the root holds: locks.py (every row lock, in one order), chain.py (the hash chain
over entries), currencies.py (ISO 4217 exponents), errors.py."""
