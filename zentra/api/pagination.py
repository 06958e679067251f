"""Cursor pagination of docs/api.md: ?limit=1..100 (default 25), ?starting_after=<id>, newest first."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter

from zentra.errors import NotFound, ValidationFailed

DEFAULT_LIMIT = 25
MAX_LIMIT = 100

LIST_PARAMS = [
    OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                     description=f"1..{MAX_LIMIT}, default {DEFAULT_LIMIT}"),
    OpenApiParameter("starting_after", str, description="id of the last object of the previous page; an id the "
                                                        "list does not know answers 404"),
]


def parse_limit(raw: str | None) -> int:
    if raw is None:  # absent: the default; present but empty is no number (400)
        return DEFAULT_LIMIT
    # isdigit() alone admits "²", which int() refuses; only ASCII digits are a limit.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be an integer from 1 to {MAX_LIMIT}",
                               errors=[{"field": "limit", "message": f"Must be an integer from 1 to {MAX_LIMIT}."}])
    return int(raw)


def paginate(request: Any, queryset: QuerySet[Any], *, order_field: str = "id",
             cursor_queryset: QuerySet[Any] | None = None) -> tuple[list[Any], bool]:
    """Returns one page of `queryset`, ordered by `order_field` descending (a unique column).

    The cursor is an object id; it is resolved in `cursor_queryset` (the tenant-scoped set)
    so a cursor of another tenant is refused like an unknown one.
    """
    limit = parse_limit(request.query_params.get("limit"))
    ordered = queryset.order_by(f"-{order_field}")
    starting_after = request.query_params.get("starting_after")
    if starting_after:
        base = cursor_queryset if cursor_queryset is not None else queryset
        position = base.filter(pk=starting_after).values_list(order_field, flat=True).first()
        if position is None:
            # Like any other id the tenant does not have (`?account=` included): well formed, but
            # naming nothing, so 404 rather than a validation error.
            raise NotFound(f"starting_after: no such object {starting_after}",
                           errors=[{"field": "starting_after", "message": "No such object."}])
        ordered = ordered.filter(**{f"{order_field}__lt": position})
    page = list(ordered[: limit + 1])
    return page[:limit], len(page) > limit


def list_body(data: list[Any], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more}
