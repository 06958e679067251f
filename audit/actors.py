"""Who acted. Every service takes an actor; history rows and evidence record it.

An actor is a user (an operator in the admin), an API key (an API client), or the system
(a named job such as the expiry worker).
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    kind: str
    id: str
    label: str
    user_id: int | None = None
    # What the actor may do, for evidence: an API key's scope (read, write).
    role: str = ""

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(kind="user", id=str(user.pk), label=user.get_username(), user_id=user.pk)

    @classmethod
    def for_api_key(cls, api_key) -> Actor:
        return cls(kind="api_key", id=api_key.id, label=api_key.name or api_key.id, role=api_key.scope)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(kind="system", id=name, label=name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


ANONYMOUS = Actor(kind="anonymous", id="-", label="anonymous")

_current_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("zentra_actor", default=None)


def current_actor() -> Actor | None:
    return _current_actor.get()


@contextlib.contextmanager
def acting_as(actor: Actor):
    """Services wrap their writes in this so history rows name the actor they were given."""
    token = _current_actor.set(actor)
    try:
        yield actor
    finally:
        _current_actor.reset(token)
