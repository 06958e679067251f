"""Many rows in one statement, as one JSON parameter.

`INSERT ... SELECT ... FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS (...)) WITH ORDINALITY`
keeps the statement's text the same whatever the number of rows (one posting or a batch of
five hundred) and its parameters to one, far below the protocol's limit of 65,535
placeholders. JSON, not one array per column: Django binds parameters on the client, and
psycopg quotes a Python list into an array literal element by element, which measured slower
than the JSON encoder by an order of magnitude. `ORDER BY position` keeps the rows in the
order given: row triggers that compare a row with the one before it (an entry with its
account's previous entry) see them in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def rows_select(columns: Sequence[tuple[str, str]]) -> str:
    """A SELECT of the given (name, SQL type) columns from the rows of one JSON parameter
    (rows_param), in the order given."""
    names = ", ".join(name for name, _ in columns)
    typed = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
    return (f"SELECT {names} FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS ({typed})) "
            f"WITH ORDINALITY AS given ({names}, position) ORDER BY position")


def _encode(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-encodable")


def rows_param(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> str:
    """The JSON parameter of rows_select: each row's values, in the columns' order. A jsonb
    column takes the value itself (a dict or list), not its encoding."""
    names = [name for name, _ in columns]
    return json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=_encode)
