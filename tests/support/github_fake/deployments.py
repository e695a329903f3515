"""GitHub Deployments and their statuses ("REST API endpoints for deployments" and "for
deployment statuses", docs.github.com/rest/deployments).

What the fake keeps of GitHub's semantics: ``ref`` is resolved to a commit (422 when it cannot
be); ``required_contexts`` left out means every commit status context must be ``success``
(409 otherwise), ``[]`` skips the check; ``auto_merge`` (default true) on a ref behind the
default branch answers 202 with the merge message instead of creating anything; statuses have
GitHub's states and 140-character descriptions; a ``success`` marks earlier successful
deployments to the same environment ``inactive`` (``auto_inactive``, default true).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .repos import Commit, Repository
from .server import Incoming, Reply

DOCS = "https://docs.github.com/rest/deployments"
STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")


def reply(status: int, payload: object) -> Reply:
    return Reply(
        status, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=utf-8"}
    )


def error(status: int, message: str, docs: str = DOCS) -> Reply:
    return reply(status, {"message": message, "documentation_url": docs, "status": str(status)})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Deployments:
    """Every repository's deployments (newest last) and each deployment's statuses."""

    api_url: str = ""
    made: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 1 << 62)))

    def create(self, request: Incoming, repo: Repository) -> Reply:
        """POST /repos/{o}/{r}/deployments."""
        fields = _body(request)
        if fields is None or not isinstance(fields.get("ref"), str):
            return error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        commit = repo.resolve(fields["ref"])
        if commit is None:
            return error(422, f"No ref found for: {fields['ref']}")
        behind = _behind_default(repo, commit)
        if fields.get("auto_merge", True) and behind:
            merged = f"Auto-merged {repo.default_branch} into {fields['ref']} on deployment."
            return reply(202, {"message": merged})
        required = fields.get("required_contexts")
        failing = _failing_contexts(repo, commit, required)
        if failing:
            return error(409, f"Conflict: Commit status checks failed for {fields['ref']}.")
        deployment_id = next(self._ids)
        url = f"{self.api_url}/repos/{repo.full_name}/deployments/{deployment_id}"
        environment = fields.get("environment") or "production"
        made = {
            "url": url,
            "id": deployment_id,
            "node_id": f"DE_{deployment_id:012d}",
            "sha": commit.sha,
            "ref": fields["ref"],
            "task": fields.get("task") or "deploy",
            "payload": fields.get("payload") or {},
            "original_environment": environment,
            "environment": environment,
            "description": fields.get("description"),
            "creator": {"login": "ci-runner", "id": 1, "type": "User"},
            "created_at": _now(),
            "updated_at": _now(),
            "statuses_url": f"{url}/statuses",
            "repository_url": f"{self.api_url}/repos/{repo.full_name}",
            "transient_environment": bool(fields.get("transient_environment", False)),
            "production_environment": bool(
                fields.get("production_environment", environment == "production")
            ),
        }
        self.made.setdefault(repo.full_name, []).append(made)
        return reply(201, made)

    def create_status(self, request: Incoming, repo: Repository, deployment: str) -> Reply:
        """POST /repos/{o}/{r}/deployments/{id}/statuses."""
        made = self._find(repo, deployment)
        if made is None:
            return error(404, "Not Found")
        fields = _body(request) or {}
        docs = f"{DOCS}/statuses#create-a-deployment-status"
        if fields.get("state") not in STATES:
            return error(422, "Validation Failed", docs)
        description = fields.get("description") or ""
        if not isinstance(description, str) or len(description) > 140:
            return error(422, "Validation Failed", docs)
        status = self._add_status(made, fields["state"], description)
        if fields["state"] == "success" and fields.get("auto_inactive", True):
            for earlier in self.made.get(repo.full_name, []):
                if earlier is made or earlier["environment"] != made["environment"]:
                    continue
                if (self.statuses.get(earlier["id"]) or [{}])[-1].get("state") == "success":
                    self._add_status(earlier, "inactive", "")
        return reply(201, status)

    def list(self, request: Incoming, repo: Repository) -> Reply:
        """GET /repos/{o}/{r}/deployments (newest first), filtered by sha/ref/environment."""
        wanted = {k: v for k, v in request.query.items() if k in ("sha", "ref", "environment")}
        made = reversed(self.made.get(repo.full_name, []))
        found = [d for d in made if all(d[k] == v for k, v in wanted.items())]
        return reply(200, found)

    def list_statuses(self, request: Incoming, repo: Repository, deployment: str) -> Reply:
        """GET /repos/{o}/{r}/deployments/{id}/statuses (newest first)."""
        made = self._find(repo, deployment)
        if made is None:
            return error(404, "Not Found")
        return reply(200, list(reversed(self.statuses.get(made["id"], []))))

    def _find(self, repo: Repository, deployment: str) -> dict[str, Any] | None:
        made = self.made.get(repo.full_name, [])
        return next((d for d in made if str(d["id"]) == deployment), None)

    def _add_status(self, made: dict[str, Any], state: str, description: str) -> dict[str, Any]:
        status_id = next(self._ids)
        status = {
            "url": f"{made['url']}/statuses/{status_id}",
            "id": status_id,
            "node_id": f"DES_{status_id:012d}",
            "state": state,
            "creator": {"login": "ci-runner", "id": 1, "type": "User"},
            "description": description,
            "environment": made["environment"],
            "target_url": "",
            "log_url": "",
            "created_at": _now(),
            "updated_at": _now(),
            "deployment_url": made["url"],
            "repository_url": made["repository_url"],
        }
        self.statuses.setdefault(made["id"], []).append(status)
        return status


def _body(request: Incoming) -> dict[str, Any] | None:
    try:
        fields = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None


def _behind_default(repo: Repository, commit: Commit) -> bool:
    """Whether the default branch has commits that ``commit`` lacks."""
    default = repo.branches.get(repo.default_branch)
    seen: str | None = commit.sha
    while seen is not None:
        if seen == default:
            return False
        seen = repo.commits[seen].parent
    return default is not None


def _failing_contexts(repo: Repository, commit: Commit, required: object) -> list[str]:
    """The contexts whose latest status is not success (all contexts when ``required`` is
    None; only those named when a list; none for ``[]``)."""
    latest: dict[str, str] = {}
    for status in repo.statuses.get(commit.sha, []):
        latest[str(status["context"])] = str(status["state"])
    wanted = list(latest) if required is None else list(required or [])  # type: ignore[call-overload]
    return [c for c in wanted if latest.get(c) != "success"]
