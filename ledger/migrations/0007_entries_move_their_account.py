"""Entries written without moving their account's stored head are refused at commit.

0003 checks the account row against its last entry whenever the row changes; an INSERT of
entries that leaves the row alone would slip past it and strand the account (its stored
sequence behind its entries). The same check now also runs for every inserted entry.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_entry_moves_its_account() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    stored_balance bigint;
    stored_sequence bigint;
    entries_balance bigint;
    entries_sequence bigint;
BEGIN
    SELECT posted_balance, last_sequence INTO stored_balance, stored_sequence FROM ledger_account
        WHERE id = NEW.account_id;
    SELECT sequence, balance_after INTO entries_sequence, entries_balance FROM ledger_ledgerentry
        WHERE account_id = NEW.account_id ORDER BY sequence DESC LIMIT 1;
    IF stored_balance IS DISTINCT FROM entries_balance OR stored_sequence IS DISTINCT FROM entries_sequence THEN
        RAISE EXCEPTION 'entry % was written: account % stores balance % at sequence %, but its entries end at '
            'balance % sequence %', NEW.id, NEW.account_id, stored_balance, stored_sequence, entries_balance,
            entries_sequence USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledgerentry_moves_its_account AFTER INSERT ON ledger_ledgerentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_moves_its_account();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS ledgerentry_moves_its_account ON ledger_ledgerentry;
DROP FUNCTION IF EXISTS ledger_entry_moves_its_account();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_hold_invariants")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
