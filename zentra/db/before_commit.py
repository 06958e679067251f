"""A hook the edge hands to a change's own transaction, without the domain knowing the edge.

The API stores a write's answer under its Idempotency-Key. Stored after the change commits, it
costs a commit of its own, and a crash between the two leaves a change without an answer.
Instead the edge sets a hook for the duration of the service call; the service, as the last
step inside its durable transaction, hands the hook what it is about to return
(`before_commit(result)`), and the hook writes the answer in that same transaction: the change
and its answer commit together or not at all. Without a hook (the admin, a task, a test) the
call does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_hook: ContextVar[Callable[[Any], None] | None] = ContextVar("zentra_before_commit", default=None)


@contextmanager
def before_commit_hook(hook: Callable[[Any], None] | None) -> Iterator[None]:
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)


def before_commit(result: Any) -> None:
    """Inside the service's durable transaction, just before it commits: give the caller's hook
    (if any) the result."""
    hook = _hook.get()
    if hook is not None:
        hook(result)
