"""Hold invariants in PostgreSQL: a hold, its account and its reserve account share one tenant
and currency; a posting that belongs to a hold belongs to the hold's tenant; a hold's original
amount, account and expiry never change after it is placed."""

from django.db import migrations

FORWARD = r"""
ALTER TABLE ledger_hold ADD CONSTRAINT hold_id_tenant_key UNIQUE (id, tenant_id);
ALTER TABLE ledger_hold ADD CONSTRAINT hold_account_same_tenant_and_currency
    FOREIGN KEY (account_id, tenant_id, currency) REFERENCES ledger_account (id, tenant_id, currency);
ALTER TABLE ledger_hold ADD CONSTRAINT hold_reserve_same_tenant_and_currency
    FOREIGN KEY (reserve_account_id, tenant_id, currency) REFERENCES ledger_account (id, tenant_id, currency);
ALTER TABLE ledger_ledgertransaction ADD CONSTRAINT txn_hold_same_tenant
    FOREIGN KEY (hold_id, tenant_id) REFERENCES ledger_hold (id, tenant_id);

CREATE FUNCTION ledger_hold_terms_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.amount <> OLD.amount OR NEW.account_id <> OLD.account_id OR NEW.currency <> OLD.currency
       OR NEW.reserve_account_id <> OLD.reserve_account_id OR NEW.tenant_id <> OLD.tenant_id
       OR NEW.expires_at <> OLD.expires_at OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'hold % terms are fixed once placed', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status <> 'active' THEN
        RAISE EXCEPTION 'hold % is % and can no longer change', OLD.id, OLD.status USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.captured_amount < OLD.captured_amount OR NEW.released_amount < OLD.released_amount THEN
        RAISE EXCEPTION 'hold % resolved amounts only grow', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER hold_terms_fixed BEFORE UPDATE ON ledger_hold FOR EACH ROW EXECUTE FUNCTION ledger_hold_terms_fixed();
CREATE TRIGGER hold_no_delete BEFORE DELETE ON ledger_hold FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS hold_no_delete ON ledger_hold;
DROP TRIGGER IF EXISTS hold_terms_fixed ON ledger_hold;
DROP FUNCTION IF EXISTS ledger_hold_terms_fixed();
ALTER TABLE ledger_ledgertransaction DROP CONSTRAINT IF EXISTS txn_hold_same_tenant;
ALTER TABLE ledger_hold DROP CONSTRAINT IF EXISTS hold_reserve_same_tenant_and_currency;
ALTER TABLE ledger_hold DROP CONSTRAINT IF EXISTS hold_account_same_tenant_and_currency;
ALTER TABLE ledger_hold DROP CONSTRAINT IF EXISTS hold_id_tenant_key;
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_holds")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
