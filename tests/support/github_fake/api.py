"""GitHub's REST semantics over the in-memory repositories: routes, JSON shapes, ETags,
rate limits, tokens, and the signed archive links the download host accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote

from . import checks
from .apps import ACCESS_TOKENS, Apps
from .deployments import Deployments
from .diffs import MAX_FILES, changed_files, comparison, stats
from .repos import Commit, Repository
from .server import Incoming, Reply

DOCS = "https://docs.github.com/rest"
STATES = ("error", "failure", "pending", "success")
LINK_LIFETIME = 300
"""Seconds a signed archive link stays valid (GitHub's are short-lived too)."""


@dataclass
class RateBucket:
    """One credential's primary (``core``) rate limit."""

    limit: int
    remaining: int
    reset: int

    def headers(self, remaining: int | None = None, reset: int | None = None) -> dict[str, str]:
        left = self.remaining if remaining is None else remaining
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(left),
            "x-ratelimit-reset": str(self.reset if reset is None else reset),
            "x-ratelimit-used": str(self.limit - left),
            "x-ratelimit-resource": "core",
        }


@dataclass
class Exhaustion:
    """Pending ``rate_limit_exhausted()`` answers."""

    times: int
    status: int
    reset: int | None


def json_reply(status: int, payload: object, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(payload).encode()
    return Reply(
        status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )


def error_reply(status: int, message: str, docs: str = DOCS, **extra: object) -> Reply:
    return json_reply(
        status, {"message": message, **extra, "documentation_url": docs, "status": str(status)}
    )


class Api:
    """Answers requests to the API host and the download host. Not thread-safe: the caller locks."""

    def __init__(self, repos: dict[str, Repository]) -> None:
        self.repos = repos
        self.api_url = ""
        self.download_url = ""
        self.required_token: str | None = None
        self.exhaustions: list[Exhaustion] = []
        self._buckets: dict[str | None, RateBucket] = {}
        self.last_bucket: RateBucket | None = None
        self.apps = Apps()
        self.deployments = Deployments()
        self.refused: set[str] = set()
        """Kinds of write ("statuses", "deployments") the credentials lack permission for."""
        self._signing_key = secrets.token_bytes(32)
        self._status_ids = iter(range(1, 1 << 62))
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = [
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)"), self._repository),
            # Before the commit route, which would take ".../check-runs" as part of a ref.
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/commits/(.+)/check-runs"), self._runs),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/commits/(.+)/status"), self._combined),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/commits/(.+)"), self._commit),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/compare/(.+)"), self._compare),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/branches"), self._branches),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/branches/(.+)"), self._branch),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/tarball(?:/(.+))?"), self._tarball),
            ("POST", re.compile(r"/repos/([^/]+)/([^/]+)/statuses/([^/]+)"), self._create_status),
            ("POST", re.compile(r"/repos/([^/]+)/([^/]+)/deployments"), self._deployment),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/deployments"), self._deployment),
            (
                "POST",
                re.compile(r"/repos/([^/]+)/([^/]+)/deployments/([0-9]+)/statuses"),
                self._deployment,
            ),
            (
                "GET",
                re.compile(r"/repos/([^/]+)/([^/]+)/deployments/([0-9]+)/statuses"),
                self._deployment,
            ),
        ]

    # -- rate limits and credentials ------------------------------------------------------

    def bucket(self, token: str | None) -> RateBucket:
        """The rate limit of ``token`` (``None``: anonymous), created full on first use."""
        if token not in self._buckets:
            limit = 60 if token is None else 5000
            self._buckets[token] = RateBucket(limit, limit, int(time.time()) + 3600)
        return self._buckets[token]

    def rate_limit_headers(self, request: Incoming) -> dict[str, str]:
        """The headers an answer to ``request`` carries, without spending anything."""
        ok, token = _credential(request)
        return self.bucket(token if ok else None).headers()

    def answer(self, request: Incoming) -> Reply:
        """Answer one API request; every answer carries the x-ratelimit-* headers."""
        app_tokens = ACCESS_TOKENS.fullmatch(request.path)
        if app_tokens and request.method == "POST":  # authorised by the App's JWT instead
            return self.apps.exchange(request, int(app_tokens.group(1)))
        ok, token = _credential(request)
        required = self.required_token is not None and token != self.required_token
        if not ok or (required and not self.apps.valid(token)) or self.apps.expired(token):
            reply = error_reply(401, "Bad credentials")
            reply.headers.update(self.bucket(None).headers())
            return reply
        bucket = self.last_bucket = self.bucket(token)
        if request.path == "/rate_limit":  # does not count against the limit
            reply = json_reply(200, _rate_limit_payload(bucket))
        elif self.exhaustions or bucket.remaining == 0:
            return self._rate_limited(bucket, token)
        else:
            reply = self._route(request, token)
            if reply.status != 304:  # conditional hits are free
                bucket.remaining -= 1
        reply.headers.update(bucket.headers())
        return reply

    def _rate_limited(self, bucket: RateBucket, token: str | None) -> Reply:
        status, reset = 403, None
        if self.exhaustions:
            pending = self.exhaustions[0]
            status, reset = pending.status, pending.reset
            pending.times -= 1
            if pending.times <= 0:
                self.exhaustions.pop(0)
        if token is None:
            message = (
                "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated "
                "requests get a higher rate limit. Check out the documentation for more details.)"
            )
        else:
            message = "API rate limit exceeded for user ID 1."
        reply = error_reply(status, message, f"{DOCS}/overview/rate-limits-for-the-rest-api")
        reply.headers.update(bucket.headers(remaining=0, reset=reset))
        return reply

    # -- API routes -----------------------------------------------------------------------

    def _route(self, request: Incoming, token: str | None) -> Reply:
        method = "GET" if request.method == "HEAD" else request.method
        for route_method, pattern, endpoint in self._routes:
            match = pattern.fullmatch(request.path)
            if match and route_method == method:
                owner, name, *rest = (unquote(g) if g else g for g in match.groups())
                repo = self.repos.get(f"{owner}/{name}")
                if repo is None or (repo.private and token is None):
                    return error_reply(404, "Not Found")
                return endpoint(request, token, repo, *rest)
        return error_reply(404, "Not Found")

    def _repository(self, request: Incoming, token: str | None, repo: Repository) -> Reply:
        payload = {
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": {"login": repo.owner},
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "default_branch": repo.default_branch,
            "html_url": f"https://github.com/{repo.full_name}",
            "url": f"{self.api_url}/repos/{repo.full_name}",
        }
        return self._cacheable(request, token, json.dumps(payload).encode(), "application/json")

    def _commit(self, request: Incoming, token: str | None, repo: Repository, ref: str) -> Reply:
        commit = repo.resolve(ref)
        if commit is None:  # GitHub says 422, not 404, for a ref it cannot find
            return error_reply(422, f"No commit found for SHA: {ref}", f"{DOCS}/commits/commits")
        if re.search(r"application/vnd\.github(\.v3)?\.sha", request.header("Accept") or ""):
            return self._cacheable(
                request, token, commit.sha.encode(), "application/vnd.github.sha"
            )
        payload = self._commit_payload(repo, commit)
        parent = repo.commits[commit.parent] if commit.parent else None
        files = changed_files(repo, self.api_url, parent, commit)
        payload["stats"] = stats(files)
        payload["files"] = files[:MAX_FILES]  # GitHub pages the rest (Link headers): not faked
        body = json.dumps(payload).encode()
        return self._cacheable(request, token, body, "application/json")

    def _runs(self, request: Incoming, token: str | None, repo: Repository, ref: str) -> Reply:
        docs = f"{DOCS}/checks/runs#list-check-runs-for-a-git-reference"
        if "checks" in self.refused:
            return _refusal("checks", docs, "read")
        commit = repo.resolve(ref)
        if commit is None:
            return error_reply(422, f"No commit found for SHA: {ref}", docs)
        per_page = min(int(request.query.get("per_page", "30")), 100)
        latest = request.query.get("filter", "latest") != "all"
        payload = checks.list_runs(repo, commit.sha, self.api_url, latest, per_page)
        return self._cacheable(request, token, json.dumps(payload).encode(), "application/json")

    def _combined(self, request: Incoming, token: str | None, repo: Repository, ref: str) -> Reply:
        docs = f"{DOCS}/commits/statuses#get-the-combined-status-for-a-specific-reference"
        if "statuses" in self.refused:
            return _refusal("statuses", docs, "read")
        commit = repo.resolve(ref)
        if commit is None:
            return error_reply(422, f"No commit found for SHA: {ref}", docs)
        per_page = min(int(request.query.get("per_page", "30")), 100)
        payload = checks.combined(repo, commit.sha, self.api_url, per_page)
        return self._cacheable(request, token, json.dumps(payload).encode(), "application/json")

    def _compare(
        self, request: Incoming, token: str | None, repo: Repository, basehead: str
    ) -> Reply:
        docs = f"{DOCS}/commits/commits#compare-two-commits"
        base_ref, dots, head_ref = basehead.partition("...")
        base, head = repo.resolve(base_ref), repo.resolve(head_ref)
        if not dots or base is None or head is None:
            return error_reply(404, "Not Found", docs)
        payload = comparison(repo, self.api_url, base, head, partial(self._commit_payload, repo))
        if payload is None:
            return error_reply(404, f"No common ancestor between {base_ref} and {head_ref}.", docs)
        return self._cacheable(request, token, json.dumps(payload).encode(), "application/json")

    def _branches(self, request: Incoming, token: str | None, repo: Repository) -> Reply:
        """List branches (docs.github.com/rest/branches/branches#list-branches): name, commit
        (sha, url) and protected, sorted by name, the first ``per_page`` (default 30, at most
        100; the next pages, announced in a Link header, are not faked)."""
        per_page = min(int(request.query.get("per_page", "30")), 100)
        payload = [
            {
                "name": name,
                "commit": {
                    "sha": sha,
                    "url": f"{self.api_url}/repos/{repo.full_name}/commits/{sha}",
                },
                "protected": False,
            }
            for name, sha in sorted(repo.branches.items())
        ][:per_page]
        return self._cacheable(request, token, json.dumps(payload).encode(), "application/json")

    def _branch(self, request: Incoming, token: str | None, repo: Repository, name: str) -> Reply:
        if name not in repo.branches:
            return error_reply(404, "Branch not found", f"{DOCS}/branches/branches#get-a-branch")
        commit = repo.commits[repo.branches[name]]
        payload = {
            "name": name,
            "commit": self._commit_payload(repo, commit),
            "_links": {
                "self": f"{self.api_url}/repos/{repo.full_name}/branches/{name}",
                "html": f"https://github.com/{repo.full_name}/tree/{name}",
            },
            "protected": False,
            "protection": {
                "enabled": False,
                "required_status_checks": {"enforcement_level": "off"},
            },
            "protection_url": f"{self.api_url}/repos/{repo.full_name}/branches/{name}/protection",
        }
        return self._cacheable(request, token, json.dumps(payload).encode(), "application/json")

    def _tarball(
        self, request: Incoming, token: str | None, repo: Repository, ref: str | None
    ) -> Reply:
        commit = repo.resolve(ref or repo.default_branch)
        if commit is None:
            return error_reply(
                404, "Not Found", f"{DOCS}/repos/contents#download-a-repository-archive-tar"
            )
        location = f"{self.download_url}/{repo.full_name}/legacy.tar.gz/{commit.sha}"
        if repo.private:  # public archives need no signature, as on codeload.github.com
            location += f"?token={self._sign(repo, commit.sha, int(time.time()) + LINK_LIFETIME)}"
        return Reply(302, b"", {"Location": location, "Content-Type": "text/html;charset=utf-8"})

    def _create_status(
        self, request: Incoming, token: str | None, repo: Repository, sha: str
    ) -> Reply:
        docs = f"{DOCS}/commits/statuses#create-a-commit-status"
        if token is None:
            return error_reply(401, "Requires authentication", docs)
        if "statuses" in self.refused:
            return _refusal("statuses", docs)
        try:
            fields = json.loads(request.body or b"{}")
        except ValueError:
            return error_reply(400, "Problems parsing JSON", docs)
        if not isinstance(fields, dict):
            return error_reply(400, "Problems parsing JSON", docs)
        if sha not in repo.commits:
            return error_reply(422, f"No commit found for SHA: {sha}", docs)
        problem = _status_problem(fields)
        if problem:
            field_name, message = problem
            error = {
                "resource": "Status",
                "code": "custom",
                "field": field_name,
                "message": message,
            }
            return error_reply(422, "Validation Failed", docs, errors=[error])
        created = self.add_status(repo, sha, fields)
        return json_reply(201, created, {"Location": str(created["url"])})

    def add_status(self, repo: Repository, sha: str, fields: dict[str, Any]) -> dict[str, object]:
        """Record a commit status on ``sha`` (``fields`` checked already): the status."""
        status_id = next(self._status_ids)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        url = f"{self.api_url}/repos/{repo.full_name}/statuses/{sha}"
        created: dict[str, object] = {
            "url": url,
            "avatar_url": None,
            "id": status_id,
            "node_id": f"SC_{status_id:012d}",
            "state": fields["state"],
            "description": fields.get("description"),
            "target_url": fields.get("target_url"),
            "context": fields.get("context") or "default",
            "created_at": now,
            "updated_at": now,
            "creator": {"login": "ci-runner", "id": 1, "type": "User"},
        }
        repo.statuses.setdefault(sha, []).append(created)
        return created

    def _deployment(
        self, request: Incoming, token: str | None, repo: Repository, deployment: str = ""
    ) -> Reply:
        if token is None and request.method == "POST":
            return error_reply(401, "Requires authentication")
        if "deployments" in self.refused:
            return _refusal("deployments", f"{DOCS}/deployments")
        self.deployments.api_url = self.api_url
        if request.method == "POST":
            if deployment:
                return self.deployments.create_status(request, repo, deployment)
            return self.deployments.create(request, repo)
        if deployment:
            return self.deployments.list_statuses(request, repo, deployment)
        return self.deployments.list(request, repo)

    # -- representations ------------------------------------------------------------------

    def _commit_payload(self, repo: Repository, commit: Commit) -> dict[str, object]:
        api = f"{self.api_url}/repos/{repo.full_name}"
        html = f"https://github.com/{repo.full_name}"
        person = {"name": "CI Fake", "email": "ci-fake@example.com", "date": _iso(commit)}
        return {
            "sha": commit.sha,
            "node_id": f"C_{commit.sha[:20]}",
            "commit": {
                "author": person,
                "committer": person,
                "message": commit.message,
                "tree": {"sha": commit.tree_sha, "url": f"{api}/git/trees/{commit.tree_sha}"},
                "url": f"{api}/git/commits/{commit.sha}",
                "comment_count": 0,
            },
            "url": f"{api}/commits/{commit.sha}",
            "html_url": f"{html}/commit/{commit.sha}",
            "author": None,
            "committer": None,
            "parents": [
                {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{html}/commit/{p}"}
                for p in ([commit.parent] if commit.parent else [])
            ],
        }

    def _cacheable(
        self, request: Incoming, token: str | None, body: bytes, media_type: str
    ) -> Reply:
        """200 with a strong ETag (tied to representation and token), or 304 if it matches."""
        digest = hashlib.sha256(f"{media_type}\0{token or ''}\0".encode() + body).hexdigest()
        etag = f'"{digest}"'
        headers = {
            "ETag": etag,
            "Cache-Control": f"{'private' if token else 'public'}, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
        }
        wanted = request.header("If-None-Match") or ""
        candidates = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
        if etag in candidates or "*" in candidates:
            return Reply(304, b"", headers)
        headers["Content-Type"] = f"{media_type}; charset=utf-8"
        return Reply(200, body, headers)

    # -- download host --------------------------------------------------------------------

    def answer_download(self, request: Incoming) -> Reply:
        """Serve ``/{o}/{r}/legacy.tar.gz/{sha}``; private repos need a valid signed link."""
        not_found = Reply(404, b"404: Not Found", {"Content-Type": "text/plain; charset=utf-8"})
        match = re.fullmatch(r"/([^/]+)/([^/]+)/legacy\.tar\.gz/(.+)", request.path)
        if request.method not in ("GET", "HEAD") or match is None:
            return not_found
        owner, name, ref = (unquote(g) for g in match.groups())
        repo = self.repos.get(f"{owner}/{name}")
        commit = repo.resolve(ref) if repo else None
        if repo is None or commit is None:
            return not_found
        signed = request.query.get("token")
        if (repo.private or signed is not None) and not self._signature_ok(repo, commit, signed):
            return not_found
        prefix = repo.archive_prefix(commit)
        return Reply(
            200,
            repo.tarball(commit),
            {
                "Content-Type": "application/x-gzip",
                "Content-Disposition": f"attachment; filename={prefix}.tar.gz",
                "ETag": f'"{commit.sha}"',
            },
        )

    def _sign(self, repo: Repository, sha: str, expires: int) -> str:
        message = f"{repo.full_name}\0{sha}\0{expires}".encode()
        mac = hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()[:32]
        return f"{expires:x}{mac}".upper()

    def _signature_ok(self, repo: Repository, commit: Commit, signed: str | None) -> bool:
        if not signed or len(signed) <= 32:
            return False
        try:
            expires = int(signed[:-32], 16)
        except ValueError:
            return False
        expected = self._sign(repo, commit.sha, expires)
        return expires >= time.time() and hmac.compare_digest(expected, signed)


def _credential(request: Incoming) -> tuple[bool, str | None]:
    """(well-formed?, token) from ``Authorization: token X`` or ``Bearer X``; none: anonymous."""
    value = request.header("Authorization")
    if value is None:
        return True, None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and token.strip():
        return True, token.strip()
    return False, None


def _refusal(kind: str, docs: str, access: str = "write") -> Reply:
    """What GitHub answers an App or fine-grained token without the ``kind: access``
    permission: 403 with x-accepted-github-permissions (github.blog changelog, 2023-08-10)."""
    reply = error_reply(403, "Resource not accessible by integration", docs)
    reply.headers["x-accepted-github-permissions"] = f"{kind}={access}"
    return reply


def _status_problem(fields: dict[str, object]) -> tuple[str, str] | None:
    if fields.get("state") not in STATES:
        return "state", "state is not included in the list"
    description = fields.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 140):
        return "description", "description is too long (maximum is 140 characters)"
    for name in ("context", "target_url"):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            return name, f"{name} is not a string"
    return None


def _rate_limit_payload(bucket: RateBucket) -> dict[str, object]:
    """GET /rate_limit as GitHub answers it ("Get rate limit status for the authenticated user",
    docs.github.com/rest/rate-limit; schema rate-limit-overview: ``resources`` with at least
    ``core`` and ``search``, each limit/remaining/reset/used, and the deprecated ``rate``, a copy
    of ``core``). Only ``core`` is counted here; the other buckets stay full."""
    core = {
        "limit": bucket.limit,
        "used": bucket.limit - bucket.remaining,
        "remaining": bucket.remaining,
        "reset": bucket.reset,
    }
    minute = int(time.time()) + 60
    search = {"limit": 30 if bucket.limit > 60 else 10, "used": 0, "reset": minute}
    graphql = {"limit": 5000 if bucket.limit > 60 else 0, "used": 0, "reset": bucket.reset}
    resources = {
        "core": core,
        "search": {**search, "remaining": search["limit"]},
        "graphql": {**graphql, "remaining": graphql["limit"]},
    }
    return {"resources": resources, "rate": core}


def _iso(commit: Commit) -> str:
    return commit.date.strftime("%Y-%m-%dT%H:%M:%SZ")
