"""The ledger's invariants, enforced by PostgreSQL itself.

A bug in Python (or a hand-written UPDATE) must hit a database error, not corrupt money:
- entries carry their account's tenant and currency, and their transaction's tenant (composite FKs);
- entries and transactions are append-only (fixes are reversals);
- every transaction balances per currency, checked at commit (deferred constraint triggers);
- each entry's sequence and balance_after follow from the account's previous entry, and only
  active accounts take entries;
- the account's stored balance and sequence head equal its last entry's, checked at commit.
"""

from django.db import migrations

FORWARD = r"""
ALTER TABLE ledger_account ADD CONSTRAINT account_id_tenant_currency_key UNIQUE (id, tenant_id, currency);
ALTER TABLE ledger_ledgertransaction ADD CONSTRAINT txn_id_tenant_key UNIQUE (id, tenant_id);
ALTER TABLE ledger_ledgerentry ADD CONSTRAINT entry_account_same_tenant_and_currency
    FOREIGN KEY (account_id, tenant_id, currency) REFERENCES ledger_account (id, tenant_id, currency);
ALTER TABLE ledger_ledgerentry ADD CONSTRAINT entry_transaction_same_tenant
    FOREIGN KEY (transaction_id, tenant_id) REFERENCES ledger_ledgertransaction (id, tenant_id);

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only: % on % refused; post a reversal instead', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER ledgerentry_append_only BEFORE UPDATE OR DELETE ON ledger_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledgertransaction_append_only BEFORE UPDATE OR DELETE ON ledger_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION ledger_check_transaction_balanced(txn_id varchar) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    entry_count integer;
    unbalanced record;
BEGIN
    SELECT count(*) INTO entry_count FROM ledger_ledgerentry WHERE transaction_id = txn_id;
    IF entry_count < 2 THEN
        RAISE EXCEPTION 'transaction % has % entries; a posting needs at least two', txn_id, entry_count
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT currency, sum(CASE WHEN direction = 'debit' THEN amount ELSE -amount END) AS net INTO unbalanced
        FROM ledger_ledgerentry WHERE transaction_id = txn_id
        GROUP BY currency HAVING sum(CASE WHEN direction = 'debit' THEN amount ELSE -amount END) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % is unbalanced in %: debits minus credits = %', txn_id, unbalanced.currency,
            unbalanced.net USING ERRCODE = 'check_violation';
    END IF;
END $$;

CREATE FUNCTION ledger_entry_balanced_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_check_transaction_balanced(NEW.transaction_id);
    RETURN NULL;
END $$;

CREATE FUNCTION ledger_transaction_balanced_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_check_transaction_balanced(NEW.id);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledgerentry_balanced AFTER INSERT ON ledger_ledgerentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced_trigger();
CREATE CONSTRAINT TRIGGER ledgertransaction_has_balanced_entries AFTER INSERT ON ledger_ledgertransaction
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced_trigger();

CREATE FUNCTION ledger_entry_follows_previous() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    account_row record;
    previous record;
    signed_amount bigint;
    expected_sequence bigint := 1;
    expected_balance bigint;
BEGIN
    SELECT normal_balance, status INTO account_row FROM ledger_account WHERE id = NEW.account_id;
    IF account_row.status IS DISTINCT FROM 'active' THEN
        RAISE EXCEPTION 'account % is %; it takes no entries', NEW.account_id, coalesce(account_row.status, 'missing')
            USING ERRCODE = 'check_violation';
    END IF;
    signed_amount := CASE WHEN NEW.direction = account_row.normal_balance THEN NEW.amount ELSE -NEW.amount END;
    expected_balance := signed_amount;
    SELECT sequence, balance_after, created_at INTO previous FROM ledger_ledgerentry
        WHERE account_id = NEW.account_id ORDER BY sequence DESC LIMIT 1;
    IF FOUND THEN
        expected_sequence := previous.sequence + 1;
        expected_balance := previous.balance_after + signed_amount;
        IF NEW.created_at < previous.created_at THEN
            RAISE EXCEPTION 'entry % of account % is dated before its predecessor', NEW.id, NEW.account_id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.sequence <> expected_sequence THEN
        RAISE EXCEPTION 'entry % of account % has sequence %, expected %', NEW.id, NEW.account_id, NEW.sequence,
            expected_sequence USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.balance_after <> expected_balance THEN
        RAISE EXCEPTION 'entry % of account % has balance_after %, expected %', NEW.id, NEW.account_id,
            NEW.balance_after, expected_balance USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ledgerentry_follows_previous BEFORE INSERT ON ledger_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_follows_previous();

-- Checked at commit against the row as it is then (NEW may be an intermediate version when
-- one transaction updates the account twice).
CREATE FUNCTION ledger_account_matches_entries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    stored_balance bigint;
    stored_sequence bigint;
    entries_balance bigint := 0;
    entries_sequence bigint := 0;
BEGIN
    SELECT posted_balance, last_sequence INTO stored_balance, stored_sequence FROM ledger_account WHERE id = NEW.id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT sequence, balance_after INTO entries_sequence, entries_balance FROM ledger_ledgerentry
        WHERE account_id = NEW.id ORDER BY sequence DESC LIMIT 1;
    IF NOT FOUND THEN
        entries_sequence := 0;
        entries_balance := 0;
    END IF;
    IF stored_balance <> entries_balance OR stored_sequence <> entries_sequence THEN
        RAISE EXCEPTION 'account % stores balance % at sequence %, but its entries end at balance % sequence %',
            NEW.id, stored_balance, stored_sequence, entries_balance, entries_sequence
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER account_matches_entries AFTER INSERT OR UPDATE ON ledger_account
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_account_matches_entries();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS account_matches_entries ON ledger_account;
DROP FUNCTION IF EXISTS ledger_account_matches_entries();
DROP TRIGGER IF EXISTS ledgerentry_follows_previous ON ledger_ledgerentry;
DROP FUNCTION IF EXISTS ledger_entry_follows_previous();
DROP TRIGGER IF EXISTS ledgertransaction_has_balanced_entries ON ledger_ledgertransaction;
DROP TRIGGER IF EXISTS ledgerentry_balanced ON ledger_ledgerentry;
DROP FUNCTION IF EXISTS ledger_transaction_balanced_trigger();
DROP FUNCTION IF EXISTS ledger_entry_balanced_trigger();
DROP FUNCTION IF EXISTS ledger_check_transaction_balanced(varchar);
DROP TRIGGER IF EXISTS ledgertransaction_append_only ON ledger_ledgertransaction;
DROP TRIGGER IF EXISTS ledgerentry_append_only ON ledger_ledgerentry;
DROP FUNCTION IF EXISTS ledger_refuse_change();
ALTER TABLE ledger_ledgerentry DROP CONSTRAINT IF EXISTS entry_transaction_same_tenant;
ALTER TABLE ledger_ledgerentry DROP CONSTRAINT IF EXISTS entry_account_same_tenant_and_currency;
ALTER TABLE ledger_ledgertransaction DROP CONSTRAINT IF EXISTS txn_id_tenant_key;
ALTER TABLE ledger_account DROP CONSTRAINT IF EXISTS account_id_tenant_currency_key;
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_ledger_core")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
