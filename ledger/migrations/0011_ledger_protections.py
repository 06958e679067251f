"""Two more walls in PostgreSQL itself (issue: trust boundaries).

- TRUNCATE of ledger tables is refused, for the schema owner too. Row triggers never see a
  TRUNCATE, so append-only rows could be emptied wholesale; a statement trigger refuses it. Like
  every ordinary trigger it does not fire under `session_replication_role = replica`, which only
  a superuser may set: the test database's cleanup uses that, the application role never can.
- An account's `currency` and `normal_balance` are fixed once it has entries: every entry's
  sign and every balance was computed under them, so changing either would silently re-read
  history.
"""

from django.db import migrations

LEDGER_TABLES = ["ledger_ledgerentry", "ledger_ledgertransaction", "ledger_account", "ledger_hold"]

FORWARD = r"""
CREATE FUNCTION ledger_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of % refused: ledger rows are append-only evidence', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
""" + "".join(f"""
CREATE TRIGGER {table.removeprefix('ledger_')}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_truncate();
""" for table in LEDGER_TABLES) + r"""
CREATE FUNCTION ledger_account_terms_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.last_sequence > 0 AND (NEW.currency IS DISTINCT FROM OLD.currency
                                  OR NEW.normal_balance IS DISTINCT FROM OLD.normal_balance) THEN
        RAISE EXCEPTION 'account % has % entries: its currency and normal balance cannot change',
            OLD.id, OLD.last_sequence USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER account_terms_fixed BEFORE UPDATE OF currency, normal_balance ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION ledger_account_terms_fixed();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS account_terms_fixed ON ledger_account;
DROP FUNCTION IF EXISTS ledger_account_terms_fixed();
""" + "".join(f"DROP TRIGGER IF EXISTS {table.removeprefix('ledger_')}_no_truncate ON {table};\n"
              for table in LEDGER_TABLES) + """
DROP FUNCTION IF EXISTS ledger_refuse_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0010_payments_move_out")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
