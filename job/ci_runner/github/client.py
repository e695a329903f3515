"""Everything the runner asks of GitHub: the head of a branch, a commit's tarball, the App
installation token, and what it reports back (commit statuses, deployments)."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Protocol
from urllib.parse import quote

import requests
import urllib3

from ..errors import ArchiveError, ConfigError, GitHubError, GitHubRefused, ServiceError, shorten
from .answers import (
    Changes,
    Head,
    RateLimit,
    Reported,
    commit_of,
    message_of,
    raise_for_status,
    rate_limit_of,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppNames:
    """What a refused App is told to check: the runner's settings, or the keys of the fleet's
    App Secret."""

    key: str = "GITHUB_APP_PRIVATE_KEY"
    app_id: str = "GITHUB_APP_ID"
    installation: str = "GITHUB_APP_INSTALLATION_ID"


class Credentials(Protocol):
    """Where the client gets its token at the moment of each request (``run/auth.py``)."""

    def __call__(self) -> str:
        """A token to send now."""

    def refused(self, token: str) -> bool:
        """GitHub answered 401 to ``token``: True when another one is worth a second try."""


# A chart lives in a repository of ordinary size; a tarball past this is refused, not kept.
MAX_TARBALL_BYTES = 200 * 1024 * 1024


class Access(Protocol):
    """The settings the client itself reads: Settings for a run, FetchSettings for the build
    pod's init container."""

    @property
    def github_api_url(self) -> str: ...
    @property
    def repo(self) -> str: ...
    @property
    def api_timeout(self) -> int: ...
    @property
    def tarball_timeout(self) -> int: ...
    @property
    def verify_https(self) -> bool: ...
    @property
    def git_token(self) -> str | None: ...
    @property
    def uses_app(self) -> bool: ...


class GitHub:
    """A small GitHub REST client over one requests Session."""

    def __init__(self, settings: Access) -> None:
        self._api = settings.github_api_url
        self._repo = settings.repo
        self._timeout = settings.api_timeout
        self._tarball_timeout = settings.tarball_timeout
        self._session = requests.Session()
        self._session.verify = settings.verify_https
        self._session.headers["User-Agent"] = "ci-runner"
        self._session.headers["X-GitHub-Api-Version"] = "2022-11-28"
        self._credentials: Credentials | None = None
        if settings.git_token:
            self._session.headers["Authorization"] = f"Bearer {settings.git_token}"
        elif not settings.uses_app:  # an App's token comes with use_credentials()
            # GitHub waives the rate limit for a 304 only when the request is authorised.
            log.warning(
                "no GIT_TOKEN: every GitHub request, 304s included, spends the 60-per-hour "
                "limit shared by this cluster's address"
            )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def head(self, branch: str, etag: str | None = None) -> Head:
        """The head commit of ``branch`` (its SHA and message), asked conditionally with the
        ETag of the last answer.

        "Get a commit" (``GET /repos/{o}/{r}/commits/{ref}``) with the default JSON media type
        carries ``sha`` and ``commit.message`` in one answer, and like most GitHub endpoints it
        returns an ETag and answers a matching ``If-None-Match`` with a 304 that costs no rate
        limit (docs.github.com/rest/commits/commits#get-a-commit; "Use conditional requests" in
        the REST best practices). So the message costs no second request.
        """
        headers = {"Accept": "application/vnd.github+json"}
        if etag:
            headers["If-None-Match"] = etag
        path = f"/repos/{self._repo}/commits/{quote(branch, safe='/')}"
        response = self._get(path, headers=headers)
        with response:
            if response.status_code == 304:
                return Head(sha=None, etag=etag)
            if response.status_code == 422:  # "No commit found for SHA": no such branch
                raise ConfigError([self._no_branch(branch)])
            self._check(response, f"reading the head of branch {branch!r}")
            sha, message = commit_of(response)
            if sha is None:
                raise GitHubError(
                    f"GitHub answered something that is not a commit SHA for branch {branch!r}: "
                    f"{shorten(response.text, 80)!r}"
                )
            return Head(sha=sha, etag=response.headers.get("ETag"), message=message)

    def _no_branch(self, branch: str) -> str:
        """What to say of a BRANCH GitHub does not know: the branches it does know, when it
        lists them (``GET /repos/{o}/{r}/branches``, docs.github.com/rest/branches/branches
        #list-branches: the first 30 by name)."""
        said = f"BRANCH {branch!r} is not a branch of {self._repo} (GitHub answered 422)"
        try:
            with self._get(f"/repos/{self._repo}/branches", params={"per_page": "30"}) as listed:
                names = [b["name"] for b in listed.json()] if listed.status_code == 200 else []
        except (GitHubError, ValueError, TypeError, KeyError):
            names = []
        if names:
            return f"{said}: it has {', '.join(names)}; check BRANCH"
        return f"{said}: check BRANCH"

    def compare(self, base: str, head: str) -> Changes:
        """The files changed from ``base`` to ``head``: ``GET /repos/{o}/{r}/compare/{base}...
        {head}`` (docs.github.com/rest/commits/commits#compare-two-commits), whose ``files``
        (``filename``, ``status``, ``previous_filename`` for a rename) GitHub cuts at 300."""
        doing = f"comparing {base[:7]}...{head[:7]}"
        response = self._get(f"/repos/{self._repo}/compare/{base}...{head}")
        with response:
            if response.status_code in {404, 422}:  # a base the branch no longer has, say
                answer = f"{response.status_code} {message_of(response)}"
                raise GitHubError(f"GitHub could not compare while {doing} ({answer})")
            self._check(response, doing)
            try:
                body = response.json()
                files = body.get("files") or []
                paths = [f["filename"] for f in files] + [
                    f["previous_filename"] for f in files if f.get("previous_filename")
                ]
                status = str(body["status"])
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise GitHubError(f"GitHub answered no comparison while {doing}") from e
            return Changes(base, status, tuple(str(p) for p in paths), len(files))

    def check_runs(self, sha: str, etag: str | None) -> Reported | None:
        """The check runs of commit ``sha``, each name's conclusion ("pending" until it
        completes), asked with ``etag``: None when GitHub answers 304 (unchanged).

        "List check runs for a Git reference" (``GET /repos/{o}/{r}/commits/{ref}/check-runs``,
        docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference): ``total_count``
        and ``check_runs`` (``name``, ``status`` queued/in_progress/completed/..., and
        ``conclusion`` once completed), the latest run of each name by default
        (``filter=latest``), at most 100 a page. An App needs ``checks: read``."""
        doing = f"reading the check runs of {sha[:7]}"
        path = f"/repos/{self._repo}/commits/{sha}/check-runs"
        with self._conditional(path, etag, doing, "checks") as response:
            if response is None:
                return None
            try:
                body = response.json()
                # Two runs of one name (from two Apps) are both kept: both must pass.
                states = [
                    (
                        str(run["name"]),
                        str(run.get("conclusion") or "pending")
                        if run.get("status") == "completed"
                        else "pending",
                    )
                    for run in body["check_runs"]
                ]
                total = int(body.get("total_count", len(body["check_runs"])))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise GitHubError(f"GitHub answered no check runs while {doing}") from e
            if total > len(body["check_runs"]):
                log.warning(
                    "%s: GitHub lists %d of %d; the rest are not read", doing, len(states), total
                )
            return Reported(response.headers.get("ETag"), tuple(sorted(states)))

    def combined_status(self, sha: str, etag: str | None) -> Reported | None:
        """The commit statuses of ``sha``, each context's latest state, asked with ``etag``:
        None when GitHub answers 304 (unchanged).

        "Get the combined status for a specific reference" (``GET /repos/{o}/{r}/commits/{ref}/
        status``, docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-
        reference): ``statuses`` holds the most recent status of each context (up to 100),
        ``state`` error/failure/pending/success. An App needs ``statuses: read``."""
        doing = f"reading the commit statuses of {sha[:7]}"
        path = f"/repos/{self._repo}/commits/{sha}/status"
        with self._conditional(path, etag, doing, "statuses") as response:
            if response is None:
                return None
            try:
                listed = response.json()["statuses"]
                states = [(str(s["context"]), str(s["state"])) for s in listed]
            except (ValueError, KeyError, TypeError) as e:
                raise GitHubError(f"GitHub answered no commit statuses while {doing}") from e
            return Reported(response.headers.get("ETag"), tuple(sorted(states)))

    @contextmanager
    def _conditional(
        self, path: str, etag: str | None, doing: str, permission: str
    ) -> Iterator[requests.Response | None]:
        """GET ``path`` with ``If-None-Match: etag``: the 200 answer, or None for a 304. A
        403 that is not the rate limit is the credentials lacking ``permission: read``."""
        headers = {"Accept": "application/vnd.github+json"}
        if etag:
            headers["If-None-Match"] = etag
        with self._get(path, headers=headers, params={"per_page": "100"}) as response:
            if response.status_code == 304:
                yield None
                return
            limited = response.headers.get("x-ratelimit-remaining") == "0"
            if response.status_code == 403 and not limited:
                raise ConfigError(
                    [
                        f"GitHub refused {doing} (403 {message_of(response)}): REQUIRE_CHECKS "
                        f"needs the App permission {permission}: read (a classic token: "
                        "the repo scope)"
                    ]
                )
            self._refuse_credentials(response, doing)
            self._check(response, doing)
            yield response

    def tarball(self, sha: str) -> IO[bytes]:
        """The gzip tarball of commit ``sha`` (GitHub redirects to a download host), in an
        unnamed temporary file on TMPDIR, read from its start; the caller closes it. Memory stays
        flat however big the repository: the pod's limit need not grow with it.

        Bounded by progress and in all: no byte for API_TIMEOUT seconds (each read's timeout)
        ends it, and so does TARBALL_TIMEOUT for the whole body, so a big repository on a slow
        but steady link arrives while one that trickles a byte a second does not hold the run."""
        ceiling = self._tarball_timeout
        deadline = time.monotonic() + ceiling
        doing = f"downloading the tarball of {sha[:7]}"
        too_big = f"the tarball of {sha[:7]} is larger than {MAX_TARBALL_BYTES} bytes"
        response = self._get(f"/repos/{self._repo}/tarball/{sha}", stream=True)
        file = tempfile.TemporaryFile()  # noqa: SIM115  # the caller's; gone when closed or killed
        try:
            with response:
                self._check(response, doing)
                if int(response.headers.get("Content-Length") or 0) > MAX_TARBALL_BYTES:
                    raise ArchiveError(too_big)
                try:
                    # read1 returns what has arrived instead of waiting for a full chunk, so the
                    # deadline is checked at least once per read timeout.
                    while chunk := response.raw.read1(1 << 16):
                        if file.tell() + len(chunk) > MAX_TARBALL_BYTES:
                            raise ArchiveError(too_big)
                        if time.monotonic() > deadline:
                            raise GitHubError(
                                f"GitHub {doing} took longer than {ceiling}s (TARBALL_TIMEOUT)"
                            )
                        _keep(file, chunk, sha)
                except (requests.Timeout, urllib3.exceptions.TimeoutError) as e:
                    raise GitHubError(
                        f"GitHub {doing} stalled: no byte for {self._timeout}s (API_TIMEOUT)"
                    ) from e
                except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
                    raise GitHubError(f"GitHub {doing} failed: {type(e).__name__}") from e
        except BaseException:
            file.close()
            raise
        file.seek(0)
        return file

    def authorize(self, token: str) -> None:
        """Send ``token`` (an App installation's) with every request from now on."""
        self._session.headers["Authorization"] = f"Bearer {token}"

    def use_credentials(self, source: Credentials) -> None:
        """Ask ``source`` for the token before every request from now on: a source that renews
        an App's installation token when it is about to expire (``run/auth.py``), so that a
        status posted after an hour's build is not refused with a 401."""
        self._credentials = source

    def installation_token(
        self, jwt: str, installation: int, named: AppNames | None = None
    ) -> tuple[str, datetime]:
        """Exchange the App's ``jwt`` for a token of ``installation``, and its expiry; a
        refusal names what to fix as ``named`` says (the runner's settings by default).

        POST /app/installations/{id}/access_tokens answers 201 with ``token`` and ``expires_at``
        (an hour later): GitHub's "Generating an installation access token for a GitHub App"
        (docs.github.com)."""
        doing = f"exchanging the App's JWT for a token of installation {installation}"
        names = named or AppNames()
        path = f"/app/installations/{installation}/access_tokens"
        response = self._post(path, None, headers={"Authorization": f"Bearer {jwt}"})
        with response:
            if response.status_code == 401:  # a credential refused: configuration (exit 2)
                raise ConfigError(
                    [
                        f"GitHub refused the App's JWT while {doing} (401 "
                        f"{message_of(response)}): {names.key} is not the key of App "
                        f"{names.app_id}, or this machine's clock is off"
                    ]
                )
            if response.status_code == 404:
                raise ConfigError(
                    [
                        f"GitHub has no installation {installation} of this App while {doing} "
                        f"(404): check {names.installation}"
                    ]
                )
            self._check(response, doing)
            try:
                body = response.json()
                token, expires = str(body["token"]), str(body["expires_at"])
                return token, datetime.fromisoformat(expires)
            except (ValueError, KeyError, TypeError) as e:
                raise GitHubError(f"GitHub answered no token while {doing}") from e

    def post_status(self, sha: str, state: str, context: str, description: str) -> None:
        """Set commit status ``context`` of ``sha`` (POST /repos/{o}/{r}/statuses/{sha})."""
        fields = {"state": state, "context": context, "description": description}
        self._write(f"/repos/{self._repo}/statuses/{sha}", fields, "posting a commit status")

    def create_deployment(self, sha: str, environment: str, description: str) -> int:
        """Create a deployment of ``sha`` to ``environment``; its id.

        ``auto_merge: false``: deploy this commit, never a merge GitHub would make;
        ``required_contexts: []``: our own pending status must not block it (GitHub checks
        every context by default), docs.github.com/en/rest/deployments/deployments."""
        fields = {
            "ref": sha,
            "environment": environment,
            "description": description,
            "auto_merge": False,
            "required_contexts": [],
        }
        body = self._write(f"/repos/{self._repo}/deployments", fields, "creating a deployment")
        if not isinstance(body.get("id"), int):
            raise GitHubError(f"GitHub created no deployment of {sha[:7]}: {shorten(str(body))}")
        return int(body["id"])

    def post_deployment_status(self, deployment: int, state: str, description: str) -> None:
        """Add status ``state`` (in_progress, success, failure) to ``deployment``."""
        path = f"/repos/{self._repo}/deployments/{deployment}/statuses"
        fields = {"state": state, "description": description}
        self._write(path, fields, "posting a deployment status")

    def _write(self, path: str, fields: dict[str, Any], doing: str) -> dict[str, Any]:
        """POST ``fields``; GitHubRefused for 403/404 (a missing permission), else GitHubError."""
        with self._post(path, fields) as response:
            limited = response.headers.get("x-ratelimit-remaining") == "0"
            if response.status_code in {403, 404} and not limited:
                wanted = response.headers.get("x-accepted-github-permissions")
                raise GitHubRefused(
                    f"GitHub refused {doing} ({response.status_code} {message_of(response)})",
                    wanted,
                )
            if response.status_code == 422:  # _raise_for_status reads a 422 as a bad branch
                raise GitHubError(
                    f"GitHub answered {response.status_code} while {doing}: {message_of(response)}"
                )
            self._check(response, doing)
            try:
                body = response.json()
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}

    def _post(self, path: str, fields: object, **kwargs: Any) -> requests.Response:
        return self._request("POST", path, json=fields, **kwargs)

    def rate_limit(self) -> RateLimit | None:
        """The core rate limit left to these credentials (``GET /rate_limit``, which costs
        nothing); None when the server does not limit (GitHub Enterprise Server answers 404
        then). ConfigError when GitHub refuses the credentials."""
        doing = "reading the rate limit"
        with self._get("/rate_limit") as response:
            if response.status_code == 404:
                return None
            self._refuse_credentials(response, doing)
            self._check(response, doing)
            return rate_limit_of(response, doing)

    def repository(self) -> dict[str, object]:
        """``GET /repos/{repo}``: ConfigError when GitHub does not show it to these credentials."""
        doing = f"reading repository {self._repo}"
        with self._get(f"/repos/{self._repo}") as response:
            self._refuse_credentials(response, doing)
            self._check(response, doing)
            try:
                answer = response.json()
            except ValueError as e:
                raise GitHubError(f"GitHub answered something unusable while {doing}") from e
            return answer if isinstance(answer, dict) else {}

    def _refuse_credentials(self, response: requests.Response, doing: str) -> None:
        # A token GitHub refuses is a misconfiguration (exit 2) for `check`.
        if response.status_code == 401:
            raise ConfigError(
                [
                    f"GitHub refused the credentials while {doing} (401 "
                    f"{message_of(response)}): check GIT_TOKEN"
                ]
            )

    def _get(self, path: str, **kwargs: Any) -> requests.Response:
        # requests drops Authorization on the cross-host redirect of a tarball download;
        # GitHub's download link carries its own short-lived authorisation.
        return self._request("GET", path, **kwargs)

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Every request to GitHub: the session's credentials and headers, API_TIMEOUT, and a
        GitHubError when GitHub cannot be reached (the caller reads the answer)."""
        url = f"{self._api}{path}"
        headers = kwargs.pop("headers", None) or {}
        source = self._credentials if "Authorization" not in headers else None
        try:
            if source is None:  # a token of the session, none, or the App's JWT
                return self._session.request(
                    method, url, headers=headers, timeout=self._timeout, **kwargs
                )
            # Asked at the moment of use, not once per run (the token exchange itself carries
            # the App's JWT instead, so renewing never recurses).
            token = source()
            response = self._session.request(
                method,
                url,
                headers={**headers, "Authorization": f"Bearer {token}"},
                timeout=self._timeout,
                **kwargs,
            )
            if response.status_code != 401 or not source.refused(token):
                return response
            # A kept token revoked before its expiry (the App's installation suspended and
            # resumed, its permissions changed): one new token, one second try.
            response.close()
            return self._session.request(
                method,
                url,
                headers={**headers, "Authorization": f"Bearer {source()}"},
                timeout=self._timeout,
                **kwargs,
            )
        except requests.Timeout as e:
            raise GitHubError(f"GitHub did not answer within {self._timeout}s ({self._api})") from e
        except requests.RequestException as e:
            # The exception text can echo the URL but never headers: the token stays out.
            raise GitHubError(f"GitHub is unreachable at {self._api}: {type(e).__name__}") from e

    @property
    def _authorised(self) -> bool:
        return self._credentials is not None or "Authorization" in self._session.headers

    def _check(self, response: requests.Response, doing: str) -> None:
        raise_for_status(response, doing, self._repo, self._authorised)


def _keep(file: IO[bytes], chunk: bytes, sha: str) -> None:
    try:
        file.write(chunk)
    except OSError as e:  # TMPDIR is full: not GitHub's doing, and not the commit's
        raise ServiceError(f"cannot keep the tarball of {sha[:7]} on TMPDIR: {e.strerror}") from e
