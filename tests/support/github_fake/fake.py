"""``GitHubFake``: the controls a test uses, and the two hosts (API and archive download)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import Any, Literal

from .api import Api, Exhaustion
from .apps import App
from .repos import Repository, build_tarball
from .server import Incoming, Reply, Server

SLOW_HOLD_SECONDS = 60.0
"""How long ``slow_next`` holds an answer at most (``stop()`` ends the hold sooner)."""


@dataclass(frozen=True)
class Request:
    """One request the fake received, as the client sent it, with the status it was given."""

    method: str
    path: str
    """Still percent-encoded, without the query."""
    query: dict[str, str]
    headers: dict[str, str]
    """As sent: ``Authorization`` included, so tests can assert where a token went."""
    status: int
    """0 when no answer was given (a ``slow_next`` hold ended by ``stop()``)."""
    host: Literal["api", "download"]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """A header's value, whatever case the client spelt its name in."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    times: int
    reply: Reply = field(default_factory=lambda: Reply(500))

    def matches(self, request: Incoming) -> bool:
        method_ok = self.method in ("*", request.method.upper())
        return method_ok and self.path.search(request.path) is not None


class GitHubFake:
    """A GitHub REST API fake on 127.0.0.1: ``url`` is the API, ``download_url`` serves archives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._repos: dict[str, Repository] = {}
        self._api = Api(self._repos)
        self._commit_counter = 0
        self._faults: list[_Fault] = []
        self._slow: list[_Fault] = []
        self._trickle: list[tuple[_Fault, float]] = []
        self._requests: list[Request] = []
        self._api_server: Server | None = None
        self._download_server: Server | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on two free ports of 127.0.0.1."""
        if self._api_server is not None:
            raise RuntimeError("the GitHub fake is already started")
        self._stopping.clear()
        self._api_server = Server(partial(self._serve, "api"), "github-fake-api")
        self._download_server = Server(partial(self._serve, "download"), "github-fake-download")
        self._api_server.start()
        self._download_server.start()
        self._api.api_url = self.url
        self._api.download_url = self.download_url

    def stop(self) -> None:
        """Release held answers, close every connection, and stop listening."""
        self._stopping.set()
        for server in (self._api_server, self._download_server):
            if server is not None:
                server.stop()
        self._api_server = self._download_server = None

    @property
    def url(self) -> str:
        """The API base, what a client uses as ``GITHUB_API_URL``."""
        if self._api_server is None:
            raise RuntimeError("the GitHub fake is not started")
        return self._api_server.url

    @property
    def download_url(self) -> str:
        """The archive host (another port, so clients drop ``Authorization`` on the redirect)."""
        if self._download_server is None:
            raise RuntimeError("the GitHub fake is not started")
        return self._download_server.url

    # -- repositories ---------------------------------------------------------------------

    def create_repo(
        self, full_name: str, private: bool = False, default_branch: str = "main"
    ) -> None:
        """Create an empty repository ``owner/name``."""
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"expected 'owner/name', got {full_name!r}")
        with self._lock:
            if full_name in self._repos:
                raise ValueError(f"{full_name} already exists")
            self._repos[full_name] = Repository(owner, name, private, default_branch)

    def push(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, str | bytes | None],
        message: str = "commit",
    ) -> str:
        """Commit ``files`` (``None`` deletes a path) on top of ``branch``; return the new sha."""
        with self._lock:
            self._commit_counter += 1
            return self._repo(full_name).push(branch, files, message, self._commit_counter).sha

    def set_tarball(self, full_name: str, sha: str, data: bytes) -> None:
        """Serve ``data`` verbatim as the archive of commit ``sha`` (for hostile-archive tests)."""
        with self._lock:
            repo = self._repo(full_name)
            if sha not in repo.commits:
                raise KeyError(f"{full_name} has no commit {sha}")
            repo.tarballs[sha] = bytes(data)

    def inflate_tarball(self, full_name: str, sha: str, zeros: Mapping[str, int]) -> None:
        """Serve commit ``sha``'s archive with files of zeros added (path: size, not in the
        commit): a repository that inflates to gigabytes, in a few MiB of gzip made quickly."""
        with self._lock:
            repo = self._repo(full_name)
            commit = repo.commits[sha]
            repo.tarballs[sha] = build_tarball(repo.archive_prefix(commit), commit, zeros)

    def statuses(self, full_name: str, sha: str) -> list[dict[str, object]]:
        """The commit statuses posted for ``sha``, oldest first."""
        with self._lock:
            return [dict(s) for s in self._repo(full_name).statuses.get(sha, [])]

    def deployments(self, full_name: str) -> list[dict[str, Any]]:
        """The deployments created in ``full_name``, oldest first, each with its ``statuses``
        (oldest first) added."""
        with self._lock:
            made = self._api.deployments.made.get(full_name, [])
            statuses = self._api.deployments.statuses
            return [{**d, "statuses": [dict(s) for s in statuses.get(d["id"], [])]} for d in made]

    # -- GitHub Apps ----------------------------------------------------------------------

    def register_app(
        self, app_id: str, public_pem: str, installation: int, client_id: str = ""
    ) -> None:
        """Register App ``app_id`` (and ``client_id``) with the public half of its key and one
        installation; its JWTs may then be exchanged for installation tokens."""
        with self._lock:
            self._api.apps.apps.append(
                App(app_id, client_id or f"Iv1.{app_id}", public_pem, {installation})
            )

    def set_app_token_lifetime(self, seconds: int) -> None:
        """Installation tokens issued from now on live ``seconds`` (GitHub's: 3600)."""
        with self._lock:
            self._api.apps.token_lifetime = seconds

    def expire_app_tokens(self) -> None:
        """Every installation token issued so far expires now (GitHub then answers 401)."""
        with self._lock:
            now = self._api.apps.now()
            for issued in self._api.apps.issued.values():
                issued.expires = min(issued.expires, now)

    def app_token_expired(self, token: str) -> bool:
        """Whether installation token ``token`` is past its ``expires_at`` (answered 401 now)."""
        with self._lock:
            return self._api.apps.expired(token)

    @property
    def app_tokens(self) -> list[str]:
        """Every installation token issued, oldest first."""
        with self._lock:
            return list(self._api.apps.issued)

    def refuse(self, *kinds: str) -> None:
        """From now on, writes of ``kinds`` ("statuses", "deployments") answer 403, as for a
        token without that permission."""
        with self._lock:
            self._api.refused.update(kinds)

    # -- behaviour controls ---------------------------------------------------------------

    def require_token(self, token: str) -> None:
        """From now on, API requests without ``token``/``Bearer`` ``token`` get 401."""
        with self._lock:
            self._api.required_token = token

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: bytes | str | dict[str, object] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests (either host; ``method`` may be ``*``;
        the regex is searched in the path) with ``status`` instead of serving them."""
        if body is None:
            body = {"message": HTTPStatus(status).phrase}
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        data = data.encode() if isinstance(data, str) else data
        reply = Reply(status, data, {"Content-Type": "application/json; charset=utf-8"})
        reply.headers.update(headers or {})
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), times, reply))

    def rate_limit_exhausted(
        self, times: int = 1, status: int = 403, reset: int | None = None
    ) -> None:
        """The next ``times`` API requests get GitHub's rate-limit answer (403 or 429) with
        ``x-ratelimit-remaining: 0``; ``reset`` (epoch seconds) overrides x-ratelimit-reset."""
        if status not in (403, 429):
            raise ValueError("GitHub signals an exhausted rate limit with 403 or 429")
        with self._lock:
            self._api.exhaustions.append(Exhaustion(times, status, reset))

    def trickle_next(self, path_regex: str, bytes_per_second: float, times: int = 1) -> None:
        """Send the body of the next ``times`` matching answers (on either host; a tarball's
        is on the download host) slowly, in small writes, until done or ``stop()``."""
        with self._lock:
            self._trickle.append((_Fault("*", re.compile(path_regex), times), bytes_per_second))

    def slow_next(self, path_regex: str, times: int = 1) -> None:
        """Hold the answer to the next ``times`` matching requests until ``stop()`` (or for
        at most ``SLOW_HOLD_SECONDS``), so that the client's timeout fires."""
        with self._lock:
            self._slow.append(_Fault("*", re.compile(path_regex), times))

    # -- observations ---------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in order of answer."""
        with self._lock:
            return list(self._requests)

    @property
    def rate_limit_remaining(self) -> int:
        """Remaining core requests of the credential last used (5000 with a token, 60 without
        at the start; before any request: the required token's, or anonymous)."""
        with self._lock:
            bucket = self._api.last_bucket or self._api.bucket(self._api.required_token)
            return bucket.remaining

    # -- serving --------------------------------------------------------------------------

    def _serve(self, host: Literal["api", "download"], incoming: Incoming) -> Reply | None:
        with self._lock:
            held = self._take(self._slow, incoming) is not None
        if held and self._stopping.wait(SLOW_HOLD_SECONDS):
            self._record(host, incoming, 0)
            return None
        with self._lock:
            fault = self._take(self._faults, incoming)
            if fault is not None:
                reply = Reply(fault.reply.status, fault.reply.body, dict(fault.reply.headers))
                if host == "api":
                    reply.headers = {**self._api.rate_limit_headers(incoming), **reply.headers}
            elif host == "api":
                reply = self._api.answer(incoming)
            else:
                reply = self._api.answer_download(incoming)
            self._requests.append(_as_request(host, incoming, reply.status))
            for pending in self._trickle:
                if reply.status == 200 and pending[0].matches(incoming):
                    reply.trickle, reply.stopping = pending[1], self._stopping
                    pending[0].times -= 1
                    self._trickle = [t for t in self._trickle if t[0].times > 0]
                    break
        return reply

    def _record(self, host: Literal["api", "download"], incoming: Incoming, status: int) -> None:
        with self._lock:
            self._requests.append(_as_request(host, incoming, status))

    def _repo(self, full_name: str) -> Repository:
        if full_name not in self._repos:
            raise KeyError(f"no repository {full_name}; call create_repo() first")
        return self._repos[full_name]

    @staticmethod
    def _take(pending: list[_Fault], incoming: Incoming) -> _Fault | None:
        """The first pending fault matching ``incoming``, used once."""
        for fault in pending:
            if fault.matches(incoming):
                fault.times -= 1
                if fault.times <= 0:
                    pending.remove(fault)
                return fault
        return None


def _as_request(host: Literal["api", "download"], incoming: Incoming, status: int) -> Request:
    return Request(
        incoming.method,
        incoming.path,
        incoming.query,
        incoming.headers,
        status,
        host,
        incoming.body,
    )
