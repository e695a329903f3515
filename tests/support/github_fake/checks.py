"""A commit's checks as GitHub reports them: check runs and the combined commit status.

- "List check runs for a Git reference", ``GET /repos/{o}/{r}/commits/{ref}/check-runs``
  (docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference): ``total_count`` and
  ``check_runs``, each with ``id``, ``name``, ``head_sha``, ``status`` (queued, in_progress,
  completed, ...), ``conclusion`` (null until completed; success, failure, neutral, cancelled,
  skipped, timed_out, action_required, stale), ``started_at``, ``completed_at``, ``app``.
  ``filter=latest`` (the default) keeps the most recent run of each name; ``per_page`` at most
  100 (the next pages, announced in a Link header, are not faked).
- "Get the combined status for a specific reference", ``GET /repos/{o}/{r}/commits/{ref}/
  status`` (docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-
  reference): the most recent status of each context, and ``state``: failure if any context
  reports error or failure, pending if there are no statuses or a context is pending, success
  if the latest status of every context is success; ``sha``, ``total_count``, ``repository``.

Both are conditional (ETag, 304) like the other reads. An App without ``checks: read`` (or
``statuses: read``) gets 403 "Resource not accessible by integration".
"""

from __future__ import annotations

import time
from typing import Any

from .repos import Repository

CONCLUSIONS = (
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "stale",
)
RUN_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def add_run(
    repo: Repository, sha: str, name: str, status: str, conclusion: str | None, run_id: int
) -> dict[str, Any]:
    """Record a check run on ``sha`` (as an App with ``checks: write`` creates one)."""
    if status not in RUN_STATUSES:
        raise ValueError(f"status {status!r} is not one of {RUN_STATUSES}")
    if (status == "completed") != (conclusion is not None) or (
        conclusion is not None and conclusion not in CONCLUSIONS
    ):
        raise ValueError("a completed run has one of GitHub's conclusions; others have none")
    run = {
        "id": run_id,
        "node_id": f"CR_{run_id:012d}",
        "head_sha": sha,
        "external_id": "",
        "name": name,
        "status": status,
        "conclusion": conclusion,
        "started_at": _now(),
        "completed_at": _now() if conclusion else None,
        "output": {"title": None, "summary": None, "text": None, "annotations_count": 0},
        "check_suite": {"id": 1},
        "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
        "pull_requests": [],
    }
    repo.check_runs.setdefault(sha, []).append(run)
    return run


def list_runs(
    repo: Repository, sha: str, api_url: str, latest: bool, per_page: int
) -> dict[str, Any]:
    """The check-runs answer for ``sha``: newest first."""
    runs = sorted(repo.check_runs.get(sha, []), key=lambda r: -int(r["id"]))
    if latest:
        seen: set[tuple[str, str]] = set()
        kept = []
        for run in runs:
            key = (run["name"], run["app"]["slug"])
            if key not in seen:
                seen.add(key)
                kept.append(run)
        runs = kept
    base = f"{api_url}/repos/{repo.full_name}/check-runs"
    shown = [
        {
            **run,
            "url": f"{base}/{run['id']}",
            "html_url": f"https://github.com/{repo.full_name}/runs/{run['id']}",
            "details_url": f"https://github.com/{repo.full_name}/runs/{run['id']}",
        }
        for run in runs[:per_page]
    ]
    return {"total_count": len(runs), "check_runs": shown}


def combined(repo: Repository, sha: str, api_url: str, per_page: int) -> dict[str, Any]:
    """The combined-status answer for ``sha``."""
    latest: dict[str, dict[str, object]] = {}
    for status in repo.statuses.get(sha, []):  # oldest first: the last of a context wins
        latest[str(status["context"])] = status
    statuses = sorted(latest.values(), key=lambda s: -int(str(s["id"])))
    states = {str(s["state"]) for s in statuses}
    if states & {"error", "failure"}:
        state = "failure"
    elif not statuses or "pending" in states:
        state = "pending"
    else:
        state = "success"
    api = f"{api_url}/repos/{repo.full_name}"
    return {
        "state": state,
        "statuses": statuses[:per_page],
        "sha": sha,
        "total_count": len(statuses),
        "repository": {"full_name": repo.full_name, "private": repo.private},
        "commit_url": f"{api}/commits/{sha}",
        "url": f"{api}/commits/{sha}/status",
    }
