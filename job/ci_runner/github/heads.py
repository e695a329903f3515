"""The fleet's questions to GitHub: many branch heads, each asked conditionally, a few at a time.

One read-only credential asks for every app, with the ETags the fleet keeps for it (GitHub's
ETags differ per credential, so an app's own are of no use here). An answer GitHub does not bill
is a 304 to a conditional request made with an Authorization header: "Making a conditional
request does not count against your primary rate limit if a 304 response is returned and the
request was made while correctly authorized" (docs.github.com, REST API "Best practices",
"Use conditional requests if appropriate").

At most ``concurrency`` requests are in flight (GitHub's secondary limits allow "no more than 100
concurrent requests", docs.github.com "Rate limits for the REST API"). On a rate-limit answer
(403 or 429 with ``retry-after``, or with ``x-ratelimit-remaining: 0``) no further question is
sent this run: "If the retry-after response header is present, you should not retry your request
until after that many seconds has elapsed ... If the x-ratelimit-remaining header is 0, you
should not retry your request until after the time ... specified by the x-ratelimit-reset
header. Otherwise, wait for at least one minute" (same page, "Exceeding the rate limit"). The
apps not asked are reported as deferred, and asked first by a later run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import requests

from ..errors import shorten
from .answers import message_of

SHA_MEDIA_TYPE = "application/vnd.github.sha"
"""``GET /repos/{o}/{r}/commits/{ref}`` answers the bare SHA with this media type
(docs.github.com/rest/commits/commits#get-a-commit): the smallest answer that says the head."""
MINUTE = 60
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Question:
    """One app's question: the head of ``branch`` of ``repo``, with the ETag kept for it."""

    key: str
    repo: str
    branch: str
    etag: str | None = None


@dataclass(frozen=True)
class Answer:
    """GitHub's answer to one question. ``sha`` None with ``problem`` None: a 304 (the head is
    still what the ETag stood for)."""

    sha: str | None
    etag: str | None
    status: int
    problem: str | None = None
    """Why this app's head is unknown this run (its repository unreadable, its branch
    missing, GitHub failing): reported for this app alone."""

    @property
    def unchanged(self) -> bool:
        return self.status == 304

    @property
    def billable(self) -> bool:
        """Whether it spent the primary rate limit: everything but a 304 (and a request that
        got no answer)."""
        return self.status not in {0, 304}


@dataclass
class Asked:
    """What one round of questions got: an Answer per key asked, the keys deferred to a later
    run, and GitHub's wait (epoch seconds) when it asked us to slow down."""

    answers: dict[str, Answer]
    deferred: list[str]
    not_before: int = 0
    why_deferred: str = ""
    refused: str | None = None
    """GitHub refused the fleet's credential (401): the fleet's configuration is wrong."""


class Heads:
    """Asks GitHub for branch heads with one token, ``concurrency`` requests at a time."""

    def __init__(
        self, api: str, token: str, timeout: float, verify: bool, concurrency: int
    ) -> None:
        self._api = api
        self._token = token
        self._timeout = timeout
        self._verify = verify
        self._concurrency = concurrency
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wait_until = 0
        self._why = ""
        self._refused: str | None = None

    def __enter__(self) -> Heads:
        return self

    def __exit__(self, *exc: object) -> None:
        for session in self._sessions:
            session.close()

    def _session(self) -> requests.Session:
        # A requests Session is not documented as thread-safe: one per worker thread, each
        # keeping its own connection to GitHub alive across that thread's questions.
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.verify = self._verify
            session.headers["User-Agent"] = "ci-runner-fleet"
            session.headers["X-GitHub-Api-Version"] = "2022-11-28"
            session.headers["Authorization"] = f"Bearer {self._token}"
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def ask(self, questions: Iterable[Question], deadline: float) -> Asked:
        """Ask every question (in the order given) until ``deadline`` (``time.monotonic``) or
        until GitHub asks us to wait; what was not asked is deferred."""
        ordered = list(questions)
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="github") as pool:
            results = list(pool.map(lambda q: self._one(q, deadline), ordered))
        answers = {q.key: a for q, a in zip(ordered, results, strict=True) if a is not None}
        deferred = [q.key for q, a in zip(ordered, results, strict=True) if a is None]
        why = self._why or ("the run's FLEET_DEADLINE passed" if deferred else "")
        return Asked(answers, deferred, self._wait_until, why, self._refused)

    def _one(self, question: Question, deadline: float) -> Answer | None:
        if self._stop.is_set() or time.monotonic() >= deadline:
            return None
        headers = {"Accept": SHA_MEDIA_TYPE}
        if question.etag:
            headers["If-None-Match"] = question.etag
        path = f"/repos/{question.repo}/commits/{quote(question.branch, safe='/')}"
        doing = f"reading the head of {question.repo} branch {question.branch!r}"
        try:
            response = self._session().get(self._api + path, headers=headers, timeout=self._timeout)
        except requests.Timeout:
            return Answer(None, None, 0, f"GitHub did not answer within {self._timeout}s")
        except requests.RequestException as e:
            return Answer(None, None, 0, f"GitHub is unreachable: {type(e).__name__}")
        with response:
            return self._read(response, question, doing)

    def _read(self, response: requests.Response, question: Question, doing: str) -> Answer | None:
        status = response.status_code
        if status == 304:
            return Answer(None, question.etag, 304)
        if status in {403, 429} and self._limited(response):
            return None
        if status == 200:
            sha = response.text.strip()
            if len(sha) != 40 or any(c not in _HEX for c in sha):
                problem = f"GitHub answered no commit SHA while {doing}: {shorten(sha, 60)!r}"
                return Answer(None, None, status, problem)
            return Answer(sha, response.headers.get("ETag"), status)
        if status == 401:
            self._refused = f"GitHub refused the fleet's token (401 {message_of(response)})"
            self._stop.set()
            return None
        if status in {403, 404}:
            problem = (
                f"GitHub shows no repository {question.repo} to the fleet's token while {doing} "
                f"({status}): give the token contents read access to it, or check REPO"
            )
        elif status == 422:
            problem = (
                f"GitHub has no branch {question.branch!r} in {question.repo} (422): check BRANCH"
            )
        else:
            problem = f"GitHub answered {status} while {doing}: {message_of(response)}"
        return Answer(None, None, status, problem)

    def _limited(self, response: requests.Response) -> bool:
        """A rate-limit answer: stop asking, and remember until when to wait."""
        headers = response.headers
        retry_after = headers.get("retry-after") or ""
        remaining = headers.get("x-ratelimit-remaining")
        now = int(time.time())
        if retry_after.isdigit():
            until, why = now + int(retry_after), f"retry-after {retry_after}s"
        elif remaining == "0":
            reset = headers.get("x-ratelimit-reset") or ""
            until = int(reset) if reset.isdigit() else now + MINUTE
            why = f"rate limit exhausted until epoch {until}"
        elif "secondary rate limit" in message_of(response).lower():
            until, why = now + MINUTE, "secondary rate limit, no retry-after: one minute"
        else:
            return False
        with self._lock:
            self._wait_until = max(self._wait_until, until)
            self._why = f"GitHub asked the fleet to wait ({why})"
        self._stop.set()
        return True
