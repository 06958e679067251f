"""django-simple-history plumbing: every historical row records the acting user or API key."""

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models
from django.dispatch import receiver
from django.utils import timezone
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from zentra.db.rowsets import rows_param, rows_select

from .actors import current_actor


class HistoricalActorFields(models.Model):
    """Extra columns of every historical table: the actor as `kind:id`, beside history_user."""

    history_actor = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        abstract = True


@receiver(pre_create_historical_record)
def stamp_history_actor(sender, instance, history_instance, **kwargs):
    actor = current_actor()
    if actor is None:
        return
    history_instance.history_actor = str(actor)
    if actor.user_id is not None:
        history_instance.history_user_id = actor.user_id


def tracked_history(**kwargs: Any) -> HistoricalRecords:
    """HistoricalRecords configured the Zentra way (actor column, text change reason)."""
    return HistoricalRecords(bases=[HistoricalActorFields], **kwargs)


def _quoted(columns: Iterable[str]) -> str:
    return ", ".join(f'"{column}"' for column in columns)


_HISTORY_OWN_COLUMNS = {"history_id", "history_date", "history_change_reason", "history_type", "history_user_id",
                        "history_actor"}


@functools.cache
def _history_model(model: type[models.Model]) -> type[models.Model]:
    # simple-history's descriptor builds a new manager class on every `Model.history` access
    # (about 0.4 ms): the hot path asks once per model.
    return model.history.model  # type: ignore[attr-defined]


Alongside = tuple[str, list[Any]]
"""Another write (an INSERT's SQL and parameters) to send in the same statement."""


def _with_alongside(sql: str, alongside: Alongside | None) -> tuple[str, list[Any]]:
    # A data-modifying CTE runs whether or not the rest of the statement reads it.
    if alongside is None:
        return sql, []
    return f"WITH alongside AS ({alongside[0]}), " + sql.removeprefix("WITH "), list(alongside[1])


def save_with_history(instance: models.Model, update_fields: list[str], *, reason: str,
                      alongside: Alongside | None = None) -> None:
    """UPDATE the row's `update_fields` and INSERT its history row in one statement.

    The same history row simple-history's post_save would write (every tracked column as it
    now stands, the date, the reason, the actor), one round trip instead of two: services on
    the hot path (a hold's capture) use it; `alongside` rides in the same statement (a payment
    intent's transition row). Must run inside the caller's transaction."""
    save_many_with_history([instance], update_fields, reason=reason, alongside=alongside)


def save_many_with_history(instances: Sequence[models.Model], update_fields: list[str], *, reason: str,
                           alongside: Alongside | None = None) -> None:
    """save_with_history for many rows of one model (the expiry job's batch): one statement,
    the new values travelling as one JSON parameter."""
    if not instances:
        return
    model = type(instances[0])
    history_model = _history_model(model)
    opts = model._meta
    set_fields = [field for name in update_fields if isinstance(field := opts.get_field(name), models.Field)]
    given = [(str(opts.pk.column), opts.pk.db_type(connection) or "varchar"),
             *((str(field.column), field.db_type(connection) or "varchar") for field in set_fields)]
    rows = [[instance.pk, *(getattr(instance, field.attname) for field in set_fields)] for instance in instances]
    assignments = ", ".join(f'"{field.column}" = given."{field.column}"' for field in set_fields)
    tracked = [str(f.column) for f in history_model._meta.local_fields if f.column not in _HISTORY_OWN_COLUMNS]
    actor = current_actor()
    columns = [*tracked, "history_date", "history_change_reason", "history_type", "history_user_id", "history_actor"]
    selected = [f'updated."{column}"' for column in tracked] + ["%s", "%s", "'~'", "%s", "%s"]
    sql = (f'WITH given AS ({rows_select(given)}), '
           f'updated AS (UPDATE "{opts.db_table}" AS target SET {assignments} FROM given '
           f'WHERE target."{opts.pk.column}" = given."{opts.pk.column}" RETURNING target.*) '
           f'INSERT INTO "{history_model._meta.db_table}" ({_quoted(columns)}) '
           f'SELECT {", ".join(selected)} FROM updated')
    sql, first = _with_alongside(sql, alongside)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*first, rows_param(given, rows), timezone.now(), reason,
                             actor.user_id if actor else None, str(actor) if actor else ""])


def create_with_history(instance: models.Model, *, reason: str, alongside: Alongside | None = None) -> None:
    """INSERT the new row and its history row ('+') in one statement: save_with_history's twin
    for a row that is born on the hot path (a hold). Must run inside the caller's transaction."""
    model = type(instance)
    history_model = _history_model(model)
    opts = model._meta
    fields = [field for field in opts.concrete_fields]
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    tracked = [str(f.column) for f in history_model._meta.local_fields if f.column not in _HISTORY_OWN_COLUMNS]
    actor = current_actor()
    columns = [*tracked, "history_date", "history_change_reason", "history_type", "history_user_id", "history_actor"]
    selected = [f'inserted."{column}"' for column in tracked] + ["%s", "%s", "'+'", "%s", "%s"]
    sql = (f'WITH inserted AS (INSERT INTO "{opts.db_table}" ({_quoted(str(f.column) for f in fields)}) '
           f'VALUES ({", ".join(["%s"] * len(fields))}) RETURNING *) '
           f'INSERT INTO "{history_model._meta.db_table}" ({_quoted(columns)}) '
           f'SELECT {", ".join(selected)} FROM inserted')
    sql, first = _with_alongside(sql, alongside)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*first, *values, timezone.now(), reason, actor.user_id if actor else None,
                             str(actor) if actor else ""])
    instance._state.adding = False
    instance._state.db = "default"
