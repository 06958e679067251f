from typing import Any

import psycopg
import psycopg.conninfo
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql


class Command(BaseCommand):
    help = "Create the configured PostgreSQL database if it does not exist yet."

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES["default"]
        params: dict[str, Any] = {"dbname": "postgres", "user": db["USER"] or None, "password": db["PASSWORD"] or None,
                                  "host": db["HOST"] or None, "port": db["PORT"] or None, "connect_timeout": 5}
        conninfo = psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
                if exists:
                    self.stdout.write(f"database {db['NAME']} exists")
                    return
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
                self.stdout.write(self.style.SUCCESS(f"created database {db['NAME']}"))
        except psycopg.OperationalError as exc:
            raise CommandError(f"cannot reach PostgreSQL at {db['HOST']}:{db['PORT']}: {exc}") from exc
