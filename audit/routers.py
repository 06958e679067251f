"""Evidence rows go through their own connection (alias `evidence`, same database).

A refused request usually ends in an exception that rolls back its transaction; a denial
written on that transaction would vanish with it. The evidence connection commits on its own.
"""

EVIDENCE_MODELS = {("audit", "accessdenial"), ("audit", "requestrecord"), ("payments", "policydecision")}


class EvidenceRouter:
    def _is_evidence(self, model) -> bool:
        return (model._meta.app_label, model._meta.model_name) in EVIDENCE_MODELS

    def db_for_read(self, model, **hints):
        return "evidence" if self._is_evidence(model) else None

    def db_for_write(self, model, **hints):
        return "evidence" if self._is_evidence(model) else None

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # Both aliases point at one database; migrate it once, through `default`.
        return db == "default"
