"""zentra_new_id(prefix): the ids of zentra/ids.py (48-bit milliseconds + 80 random bits in
Crockford base32), made in SQL, so the outbox can write an event's deliveries in the same
statement as the event."""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION zentra_new_id(prefix text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    millis bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
    encoded text := '';
BEGIN
    FOR i IN 1..10 LOOP
        encoded := substr(alphabet, (millis % 32)::int + 1, 1) || encoded;
        millis := millis / 32;
    END LOOP;
    FOR i IN 1..16 LOOP
        encoded := encoded || substr(alphabet, floor(random() * 32)::int + 1, 1);
    END LOOP;
    RETURN prefix || '_' || encoded;
END $$;
"""

BACKWARD = "DROP FUNCTION IF EXISTS zentra_new_id(text);"


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0002_delivery")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
