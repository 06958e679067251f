"""Payments move out of the ledger into their own app (payments/).

In the state only: the models leave the ledger app (payments/migrations/0001 takes them, tables
and rows included). In the database, one change: a ledger transaction names the intent or
payout that caused it by id, without a foreign key into the payments tables. Dropping the
constraints keeps every value; no ledger row is rewritten.
"""

from django.db import migrations, models


DROP_PAYMENT_FOREIGN_KEYS = r"""
DO $$
DECLARE fk record;
BEGIN
    FOR fk IN SELECT conname FROM pg_constraint
              WHERE conrelid = 'ledger_ledgertransaction'::regclass AND contype = 'f'
                AND confrelid IN ('ledger_paymentintent'::regclass, 'ledger_payout'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE ledger_ledgertransaction DROP CONSTRAINT %I', fk.conname);
    END LOOP;
END $$;
"""

RESTORE_PAYMENT_FOREIGN_KEYS = r"""
ALTER TABLE ledger_ledgertransaction ADD CONSTRAINT txn_intent_same_tenant
    FOREIGN KEY (payment_intent_id, tenant_id) REFERENCES ledger_paymentintent (id, tenant_id);
ALTER TABLE ledger_ledgertransaction ADD CONSTRAINT txn_payout_same_tenant
    FOREIGN KEY (payout_id, tenant_id) REFERENCES ledger_payout (id, tenant_id);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0009_payment_invariants'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(DROP_PAYMENT_FOREIGN_KEYS, RESTORE_PAYMENT_FOREIGN_KEYS)],
            state_operations=[
                migrations.RemoveField(
                    model_name='historicalpaymentintent',
                    name='destination_account',
                ),
                migrations.RemoveField(
                    model_name='historicalpaymentintent',
                    name='history_user',
                ),
                migrations.RemoveField(
                    model_name='historicalpaymentintent',
                    name='hold',
                ),
                migrations.RemoveField(
                    model_name='historicalpaymentintent',
                    name='route',
                ),
                migrations.RemoveField(
                    model_name='historicalpaymentintent',
                    name='source_account',
                ),
                migrations.RemoveField(
                    model_name='historicalpaymentintent',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='historicalpayout',
                    name='account',
                ),
                migrations.RemoveField(
                    model_name='historicalpayout',
                    name='history_user',
                ),
                migrations.RemoveField(
                    model_name='historicalpayout',
                    name='provider',
                ),
                migrations.RemoveField(
                    model_name='historicalpayout',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='historicalpolicyrule',
                    name='history_user',
                ),
                migrations.RemoveField(
                    model_name='historicalpolicyrule',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='historicalprovider',
                    name='history_user',
                ),
                migrations.RemoveField(
                    model_name='historicalprovider',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='historicalproviderroute',
                    name='history_user',
                ),
                migrations.RemoveField(
                    model_name='historicalproviderroute',
                    name='provider',
                ),
                migrations.RemoveField(
                    model_name='historicalproviderroute',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='intenttransition',
                    name='intent',
                ),
                migrations.RemoveField(
                    model_name='paymentintent',
                    name='destination_account',
                ),
                migrations.RemoveField(
                    model_name='paymentintent',
                    name='hold',
                ),
                migrations.RemoveField(
                    model_name='paymentintent',
                    name='route',
                ),
                migrations.RemoveField(
                    model_name='paymentintent',
                    name='source_account',
                ),
                migrations.RemoveField(
                    model_name='paymentintent',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='providerevent',
                    name='intent',
                ),
                migrations.RemoveField(
                    model_name='providerattempt',
                    name='intent',
                ),
                migrations.RemoveField(
                    model_name='ledgertransaction',
                    name='payment_intent',
                ),
                migrations.RemoveField(
                    model_name='payout',
                    name='account',
                ),
                migrations.RemoveField(
                    model_name='payout',
                    name='provider',
                ),
                migrations.RemoveField(
                    model_name='payout',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='ledgertransaction',
                    name='payout',
                ),
                migrations.DeleteModel(
                    name='PolicyDecision',
                ),
                migrations.RemoveField(
                    model_name='policyrule',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='provider',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='providerroute',
                    name='provider',
                ),
                migrations.RemoveField(
                    model_name='providerevent',
                    name='provider',
                ),
                migrations.RemoveField(
                    model_name='providerattempt',
                    name='provider',
                ),
                migrations.RemoveField(
                    model_name='providerattempt',
                    name='route',
                ),
                migrations.RemoveField(
                    model_name='providerroute',
                    name='tenant',
                ),
                migrations.AddField(
                    model_name='ledgertransaction',
                    name='payment_intent_id',
                    field=models.CharField(blank=True, db_index=True, max_length=40, null=True),
                ),
                migrations.AddField(
                    model_name='ledgertransaction',
                    name='payout_id',
                    field=models.CharField(blank=True, db_index=True, max_length=40, null=True),
                ),
                migrations.DeleteModel(
                    name='HistoricalPaymentIntent',
                ),
                migrations.DeleteModel(
                    name='HistoricalPayout',
                ),
                migrations.DeleteModel(
                    name='HistoricalPolicyRule',
                ),
                migrations.DeleteModel(
                    name='HistoricalProvider',
                ),
                migrations.DeleteModel(
                    name='HistoricalProviderRoute',
                ),
                migrations.DeleteModel(
                    name='IntentTransition',
                ),
                migrations.DeleteModel(
                    name='PaymentIntent',
                ),
                migrations.DeleteModel(
                    name='Payout',
                ),
                migrations.DeleteModel(
                    name='PolicyRule',
                ),
                migrations.DeleteModel(
                    name='ProviderEvent',
                ),
                migrations.DeleteModel(
                    name='Provider',
                ),
                migrations.DeleteModel(
                    name='ProviderAttempt',
                ),
                migrations.DeleteModel(
                    name='ProviderRoute',
                ),
            ],
        ),
    ]
