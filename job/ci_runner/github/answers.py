"""How GitHub's answers become the runner's values (heads, comparisons, rate limits) and
errors (one place for both the reads and the writes of github.py)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from ..errors import ConfigError, GitHubError, shorten


@dataclass(frozen=True)
class Head:
    """The head commit of a branch as GitHub reported it."""

    sha: str | None
    """The commit SHA, or None when GitHub answered 304 (unchanged since ``etag``)."""
    etag: str | None
    """The ETag to send next time; a 304 answer for it costs no rate limit."""
    message: str | None = None
    """The commit message; None when GitHub answered 304."""


@dataclass(frozen=True)
class Changes:
    """What GitHub's compare of two commits says changed."""

    base: str
    status: str
    """ahead, behind, diverged or identical: how the head stands to ``base``."""
    paths: tuple[str, ...]
    """Every path the listed files touch (a rename's old name too)."""
    listed: int
    """How many files GitHub listed (it lists at most 300)."""


@dataclass(frozen=True)
class Reported:
    """What GitHub answered for a commit's check runs, or for its commit statuses."""

    etag: str | None
    """The ETag to ask with next time: a 304 for it means nothing changed."""
    states: tuple[tuple[str, str], ...]
    """(name, state) pairs, sorted: a check run's conclusion ("pending" until it completes),
    or a status context's state. A name may come twice (two Apps' runs of one name)."""


@dataclass(frozen=True)
class RateLimit:
    """The primary (``core``) rate limit of the credentials in use."""

    limit: int
    remaining: int
    reset: int
    """When it is full again, in seconds since the epoch."""


def rate_limit_of(response: requests.Response, doing: str) -> RateLimit:
    """The ``core`` bucket of a ``GET /rate_limit`` answer."""
    try:
        core = response.json()["resources"]["core"]
        return RateLimit(int(core["limit"]), int(core["remaining"]), int(core["reset"]))
    except (ValueError, KeyError, TypeError) as e:
        raise GitHubError(f"GitHub answered something unusable while {doing}") from e


_SHA_LENGTH = 40
_HEX = frozenset("0123456789abcdef")


def raise_for_status(response: requests.Response, doing: str, repo: str, authorised: bool) -> None:
    """Our error for an error answer: rate limit and 5xx exit 3; a repository or ref GitHub
    does not show exits 2."""
    if response.status_code < 400:
        return
    remaining = response.headers.get("x-ratelimit-remaining")
    if response.status_code in {403, 429} and (
        remaining == "0" or "retry-after" in response.headers
    ):
        reset = response.headers.get("x-ratelimit-reset", "")
        when = f" (resets at epoch {reset})" if reset else ""
        raise GitHubError(f"GitHub rate limit exhausted while {doing}{when}")
    message = message_of(response)
    if response.status_code == 401:
        # A credential GitHub refuses is wrong configuration in every command (exit 2): a
        # retry by the next run cannot help.
        raise ConfigError(
            [
                f"GitHub refused the token while {doing} (401 {message}): check GIT_TOKEN "
                "(or the GitHub App's settings)"
            ]
        )
    if response.status_code == 404:
        # GitHub answers 404 for a private repository the token may not see, too.
        access = "the token has no access to it" if authorised else "no GIT_TOKEN"
        raise ConfigError(
            [
                f"GitHub has no repository {repo!r} while {doing} (404): check REPO; "
                f"it may be private and {access}"
            ]
        )
    if response.status_code == 422:
        # GitHub answers 422 "No commit found for SHA" for a branch that does not exist.
        raise ConfigError([f"GitHub found no such commit or branch while {doing} (422)"])
    raise GitHubError(f"GitHub answered {response.status_code} while {doing}: {message}")


def commit_of(response: requests.Response) -> tuple[str | None, str]:
    """(sha, message) of a "Get a commit" answer; sha None when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None, ""
    sha = body.get("sha") if isinstance(body, dict) else None
    if not isinstance(sha, str) or len(sha) != _SHA_LENGTH or any(c not in _HEX for c in sha):
        return None, ""
    commit = body.get("commit")
    message = commit.get("message") if isinstance(commit, dict) else None
    return sha, message if isinstance(message, str) else ""


def message_of(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return shorten(response.text, 120)
    return shorten(str(body.get("message", "")) if isinstance(body, dict) else "", 120)
