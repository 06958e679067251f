"""The registry of actions that can wait for a second person (maker-checker).

Audit sits below every app that owns such an action, so it cannot import them: each app
registers its actions at start-up (its AppConfig.ready), naming how an approved proposal runs,
always through the service the action would have used directly. A runner gets the approval (its
tenant, payload and both people) and the actor to run as, and returns the id of what it made.

A runner is idempotent per approval: if a decider died after the action committed and before
the approval was marked, the next decider's run finds the action done (by the approval id it
carries) and returns the same result instead of doing it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .actors import Actor

if TYPE_CHECKING:
    from .models import Approval


@dataclass(frozen=True)
class ApprovalAction:
    name: str
    label: str
    run: Callable[[Approval, Actor], str]


_ACTIONS: dict[str, ApprovalAction] = {}


def approval_action_register(name: str, *, label: str, run: Callable[[Approval, Actor], str]) -> None:
    _ACTIONS[name] = ApprovalAction(name=name, label=label, run=run)


def approval_action(name: str) -> ApprovalAction:
    return _ACTIONS[name]


def approval_actions() -> dict[str, ApprovalAction]:
    return dict(_ACTIONS)


def actor_for_approval(approval: Approval) -> Actor:
    """Who an approved action runs as: the approval itself, which names both people, so every
    row the action writes (history, entries, events) leads back to the proposer and the decider."""
    return Actor(kind="approval", id=approval.id,
                 label=f"{approval.proposed_by_label or approval.proposed_by}, approved by "
                       f"{approval.decided_by_label or approval.decided_by}")
