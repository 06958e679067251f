"""Payments stay inside one tenant and currency, enforced by PostgreSQL: an intent's accounts,
a payout's account, and the postings that belong to an intent or a payout."""

from django.db import migrations

FORWARD = r"""
ALTER TABLE ledger_paymentintent ADD CONSTRAINT intent_id_tenant_key UNIQUE (id, tenant_id);
ALTER TABLE ledger_paymentintent ADD CONSTRAINT intent_source_same_tenant_and_currency
    FOREIGN KEY (source_account_id, tenant_id, currency) REFERENCES ledger_account (id, tenant_id, currency);
ALTER TABLE ledger_paymentintent ADD CONSTRAINT intent_destination_same_tenant_and_currency
    FOREIGN KEY (destination_account_id, tenant_id, currency) REFERENCES ledger_account (id, tenant_id, currency);
ALTER TABLE ledger_payout ADD CONSTRAINT payout_id_tenant_key UNIQUE (id, tenant_id);
ALTER TABLE ledger_payout ADD CONSTRAINT payout_account_same_tenant_and_currency
    FOREIGN KEY (account_id, tenant_id, currency) REFERENCES ledger_account (id, tenant_id, currency);
ALTER TABLE ledger_ledgertransaction ADD CONSTRAINT txn_intent_same_tenant
    FOREIGN KEY (payment_intent_id, tenant_id) REFERENCES ledger_paymentintent (id, tenant_id);
ALTER TABLE ledger_ledgertransaction ADD CONSTRAINT txn_payout_same_tenant
    FOREIGN KEY (payout_id, tenant_id) REFERENCES ledger_payout (id, tenant_id);
CREATE TRIGGER intenttransition_append_only BEFORE UPDATE OR DELETE ON ledger_intenttransition
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER providerattempt_append_only BEFORE UPDATE OR DELETE ON ledger_providerattempt
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS providerattempt_append_only ON ledger_providerattempt;
DROP TRIGGER IF EXISTS intenttransition_append_only ON ledger_intenttransition;
ALTER TABLE ledger_ledgertransaction DROP CONSTRAINT IF EXISTS txn_payout_same_tenant;
ALTER TABLE ledger_ledgertransaction DROP CONSTRAINT IF EXISTS txn_intent_same_tenant;
ALTER TABLE ledger_payout DROP CONSTRAINT IF EXISTS payout_account_same_tenant_and_currency;
ALTER TABLE ledger_payout DROP CONSTRAINT IF EXISTS payout_id_tenant_key;
ALTER TABLE ledger_paymentintent DROP CONSTRAINT IF EXISTS intent_destination_same_tenant_and_currency;
ALTER TABLE ledger_paymentintent DROP CONSTRAINT IF EXISTS intent_source_same_tenant_and_currency;
ALTER TABLE ledger_paymentintent DROP CONSTRAINT IF EXISTS intent_id_tenant_key;
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0008_payments")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
