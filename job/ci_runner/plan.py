"""What one cycle should do: a pure function of (head commit, state, settings)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .state import State


class Action(enum.Enum):
    NOTHING = "nothing"
    """The head is deployed already."""
    GIVEN_UP = "given-up"
    """The head used up its attempts; a new commit or --force starts again."""
    BUILD_AND_DEPLOY = "build-and-deploy"
    DEPLOY = "deploy"
    """The head's image was built by an earlier attempt whose deploy failed."""


@dataclass(frozen=True)
class Plan:
    action: Action
    sha: str
    attempt: int
    """The number of the attempt this run would make (1 for a fresh commit)."""
    reason: str
    digest: str | None = None
    """For a deploy without rebuild: the digest the earlier build pushed, if it was read."""

    @property
    def acts(self) -> bool:
        """True when the plan builds or deploys."""
        return self.action in {Action.BUILD_AND_DEPLOY, Action.DEPLOY}


def decide(head: str, state: State, max_attempts: int, force: bool = False) -> Plan:
    """Decide what to do with ``head`` given ``state``."""
    used = state.attempts_for(head)
    attempt = used + 1
    if not force and head == state.deployed_sha:
        return Plan(Action.NOTHING, head, attempt, f"{head[:7]} is already deployed")
    if not force and head == state.skipped_sha:
        reason = f"{head[:7]} was skipped (not to be built); the next commit is considered"
        return Plan(Action.NOTHING, head, attempt, reason)
    if not force and used >= max_attempts:
        return Plan(
            Action.GIVEN_UP,
            head,
            attempt,
            f"gave up on {head[:7]} after {used} failed attempt(s) (MAX_RETRIES={max_attempts}); "
            f"last error: {state.last_error or 'unknown'}",
        )
    forced = " (forced)" if force else ""
    if state.built_sha == head:
        reason = f"deploy {head[:7]}, its image is already built{forced}"
        return Plan(Action.DEPLOY, head, attempt, reason, state.built_digest)
    return Plan(Action.BUILD_AND_DEPLOY, head, attempt, f"build and deploy {head[:7]}{forced}")
