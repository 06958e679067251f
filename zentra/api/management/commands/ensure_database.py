from typing import Any
from urllib.parse import unquote, urlparse

import psycopg
import psycopg.conninfo
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

from zentra.db.security import role_ensure


class Command(BaseCommand):
    help = ("Create the configured PostgreSQL database if it does not exist yet, with its two roles "
            "(docs/security.md, Database roles): the schema owner of DATABASE_URL and the application role of "
            "DATABASE_APP_URL. Connects as DATABASE_ADMIN_URL (default: DATABASE_URL's own login).")

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES["default"]
        admin = urlparse(settings.DATABASE_ADMIN_URL) if settings.DATABASE_ADMIN_URL else None
        params: dict[str, Any] = {
            "dbname": "postgres", "connect_timeout": 5,
            "user": (unquote(admin.username or "") if admin else db["USER"]) or None,
            "password": (unquote(admin.password or "") if admin else db["PASSWORD"]) or None,
            "host": (admin.hostname if admin else db["HOST"]) or None,
            "port": (admin.port if admin else db["PORT"]) or None,
        }
        conninfo = psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})
        owner = settings.DATABASE_OWNER_ROLE
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                if admin is not None:
                    self._roles(conn, owner)
                exists = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                                      [db["NAME"]]).fetchone()
                if exists and admin is not None and exists[0] != owner:
                    raise CommandError(
                        f"database {db['NAME']} exists but is owned by {exists[0]}, not {owner} (DATABASE_URL): "
                        f"migrations must run as its owner. A local demo database can be dropped "
                        f"(dropdb -h {params['host']} {db['NAME']}); or set DATABASE_URL to {exists[0]}'s login")
                if exists:
                    self.stdout.write(f"database {db['NAME']} exists (owner {exists[0]})")
                    return
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db["NAME"]),
                                                                           sql.Identifier(owner)))
                self.stdout.write(self.style.SUCCESS(f"created database {db['NAME']} owned by {owner}"))
        except psycopg.OperationalError as exc:
            raise CommandError(f"cannot reach PostgreSQL at {params['host']}:{params['port']}: {exc}") from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise CommandError(f"{params['user']} may not create roles or databases ({exc}); set "
                               "DATABASE_ADMIN_URL to a login that may, or create them by hand "
                               "(docs/security.md, Database roles)") from exc

    def _roles(self, conn: psycopg.Connection, owner: str) -> None:
        """The owner (no superuser; BYPASSRLS: its commands read across tenants) and the
        application role, when they are missing."""
        found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [owner]).fetchone()
        if not found:
            statement = sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS").format(
                sql.Identifier(owner))
            if settings.DATABASE_OWNER_PASSWORD:
                statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(settings.DATABASE_OWNER_PASSWORD))
            conn.execute(statement)
            self.stdout.write(self.style.SUCCESS(f"created role {owner} (schema owner)"))
        with conn.cursor() as cursor:
            if role_ensure(cursor, settings.DATABASE_APP_ROLE, settings.DATABASE_APP_PASSWORD):
                self.stdout.write(self.style.SUCCESS(f"created role {settings.DATABASE_APP_ROLE} (application)"))
