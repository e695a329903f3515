"""``ci-runner check``, GitHub's side: the App's token, the credentials and the rate limit left,
the repository and the branch. Nothing is kept: ``check`` writes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from .. import logs
from ..checklist import Result, failed, passed
from ..config import Settings
from ..errors import ConfigError, GitHubError
from .answers import RateLimit
from .app import app_jwt
from .client import GitHub


def app_line(s: Settings, github: GitHub) -> Result:
    """GitHub exchanges the App's JWT for an installation token, which then authorises the
    checks that follow. The token is not kept: ``check`` writes nothing."""
    assert s.github_app_id and s.github_app_private_key and s.github_app_installation_id
    item = f"GitHub App {s.github_app_id}"
    jwt = app_jwt(s.github_app_id, s.github_app_private_key, datetime.now(UTC))
    logs.learn(jwt)
    try:
        token, expires = github.installation_token(jwt, s.github_app_installation_id)
    except (ConfigError, GitHubError) as e:  # a key GitHub rejects, no such installation: 2
        return failed(item, e)
    logs.learn(token)
    github.authorize(token)
    until = expires.astimezone(UTC).strftime("%H:%M UTC")
    return passed(item, f"installation {s.github_app_installation_id} token issued (until {until})")


def rate_limit_line(s: Settings, limit: RateLimit | None) -> Result:
    """GitHub accepted the credentials; how much of the rate limit is left."""
    item = "GitHub credentials"
    who = "GIT_TOKEN accepted" if s.git_token else "none (no GIT_TOKEN): anonymous requests"
    if s.uses_app:
        who = "the App's installation token accepted"
    if limit is None:
        return passed(item, f"{who}; this server does not rate limit")
    reset = datetime.fromtimestamp(limit.reset, UTC).strftime("%H:%M UTC")
    left = f"{limit.remaining}/{limit.limit} requests left this hour (full again at {reset})"
    if limit.remaining == 0:
        hint = "" if s.has_credentials else "; set GIT_TOKEN (5000 an hour instead of 60)"
        return failed(item, f"{who}, but the rate limit is exhausted: {left}{hint}", 3)
    if not s.has_credentials:
        left += "; 60 an hour shared by this address: set GIT_TOKEN"
    return passed(item, f"{who}, {left}")


def check_github(s: Settings, github: GitHub) -> tuple[list[Result], str | None]:
    """GitHub answers and takes the credentials; the repository and the branch: the lines, and
    the head commit when the branch was found (its chart is checked next). A failed step skips
    those that depend on it."""
    if s.uses_app:
        app = app_line(s, github)
        if not app.ok:
            return [replace(app, message=f"{app.message}; the repository was not checked")], None
    try:
        results = [*([app] if s.uses_app else []), rate_limit_line(s, github.rate_limit())]
    except (ConfigError, GitHubError) as e:
        result = failed("GitHub credentials", e)
        skipped = f"{result.message}; the repository was not checked"
        return [replace(result, message=skipped)], None
    if not results[-1].ok:
        return results, None
    try:
        repository = github.repository()
        visibility = "private" if repository.get("private") else "public"
        results.append(passed(f"repository {s.repo}", f"visible ({visibility})"))
        head = github.head(s.branch)
    except (ConfigError, GitHubError) as e:
        checked = len(results) - s.uses_app  # the App's line is not a repository step
        item = f"repository {s.repo}" if checked == 1 else f"branch {s.branch}"
        return [*results, failed(item, e)], None
    assert head.sha is not None  # asked without an ETag: never a 304
    results.append(passed(f"branch {s.branch}", f"head is {head.sha[:7]}"))
    if s.require_checks:
        results.append(checks_line(s, github, head.sha))
    return results, head.sha


def checks_line(s: Settings, github: GitHub, sha: str) -> Result:
    """REQUIRE_CHECKS needs to read check runs (an App: ``checks: read``) and commit statuses
    (``statuses: read``): both are read for the head, as a run would."""
    item = "REQUIRE_CHECKS"
    try:
        runs = github.check_runs(sha, None)
        statuses = github.combined_status(sha, None)
    except (ConfigError, GitHubError) as e:
        return failed(item, e)
    assert runs is not None and statuses is not None  # asked without an ETag: never a 304
    names = sorted({name for name, _ in (*runs.states, *statuses.states)} - {s.status_context})
    shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") if names else "none yet"
    return passed(item, f"check runs and statuses readable; on {sha[:7]}: {shown}")
