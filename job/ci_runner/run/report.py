"""What GitHub and the operator are told at each step of a cycle: the commit status, the GitHub
Deployment and the NOTIFY_URL message.

What to say is decided by pure functions (``building``, ``deploying``, ``deployed``,
``failure``); the ``Reporter`` sends it and never fails a cycle: what cannot be sent is one
warning line per kind and run, and that kind is not tried again in the run. A run that does
nothing reports nothing, so a no-op run stays one free 304.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import requests

from ..config import Settings
from ..errors import CiRunnerError, GitHubRefused, shorten
from ..github.client import GitHub

log = logging.getLogger(__name__)

MAX_DESCRIPTION = 140
"""GitHub refuses a longer status or deployment description (422)."""
MAX_NOTIFIED_ERROR = 1000
# What each kind of report needs, as a fine-grained/App permission and as a classic scope.
PERMISSIONS = {
    "statuses": "'Commit statuses: write' (classic token: repo:status)",
    "deployments": "'Deployments: write' (classic token: repo_deployment)",
}


@dataclass(frozen=True)
class Report:
    """What to tell GitHub and the operator at one step."""

    state: str
    """The commit status: pending, success or failure."""
    description: str
    """At most MAX_DESCRIPTION characters."""
    deployment: str
    """The deployment's status: in_progress, success or failure."""
    event: str | None = None
    """What NOTIFY_URL is told: deployed, failed, given-up; None: nothing."""


def building() -> Report:
    return Report("pending", "building", "in_progress")


def deploying() -> Report:
    return Report("pending", "deploying", "in_progress")


def deployed(namespace: str, release: str, revision: int | None) -> Report:
    text = f"deployed as {namespace}/{release} revision {revision}"
    return Report("success", shorten(text, MAX_DESCRIPTION), "success", "deployed")


def failure(attempt: int, max_attempts: int, error: str) -> Report:
    """Attempt ``attempt`` of ``max_attempts`` failed; the last one gives the commit up."""
    if attempt >= max_attempts:
        head, event = f"given up after {max_attempts} attempts: ", "given-up"
    else:
        head, event = f"attempt {attempt}/{max_attempts} failed: ", "failed"
    text = head + shorten(error, MAX_DESCRIPTION - len(head))
    return Report("failure", text, "failure", event)


def notification(
    settings: Settings, sha: str, report: Report, error: str | None
) -> dict[str, object]:
    """The NOTIFY_URL body: Slack's ``text``, and the same facts as fields for other tools."""
    s = settings
    what = {"deployed": "deployed", "failed": "failed", "given-up": "given up"}[report.event or ""]
    text = f"ci-runner {s.release}: {s.repo}@{sha[:7]} ({s.branch}) {what}: {report.description}"
    body: dict[str, object] = {
        "text": text,
        "event": report.event,
        "repo": s.repo,
        "branch": s.branch,
        "sha": sha,
        "release": s.release,
        "namespace": s.deploy_namespace,
        "description": report.description,
    }
    if error is not None:
        body["error"] = shorten(error, MAX_NOTIFIED_ERROR)
    return body


class Reporter:
    """Sends each step's Report; one warning per kind that cannot be sent, then silence."""

    def __init__(self, settings: Settings, github: GitHub) -> None:
        s = self._settings = settings
        self._github = github
        self._on = {
            "statuses": s.github_status and s.has_credentials,
            "deployments": s.github_deployments and s.has_credentials,
            "notify": s.notify_url is not None,
        }
        self._deployment: int | None = None

    def building(self, sha: str) -> None:
        """The build of ``sha`` starts."""
        self._send(sha, building())

    def deploying(self, sha: str) -> None:
        """The deploy of ``sha`` starts."""
        self._send(sha, deploying())

    def deployed(self, sha: str, revision: int | None) -> None:
        """``sha`` is deployed as helm ``revision``."""
        s = self._settings
        self._send(sha, deployed(s.deploy_namespace, s.release, revision))

    def still_deployed(self, sha: str) -> None:
        """A forced redeploy of the deployed ``sha`` failed on configuration: the status this
        run set to pending goes back to success (the release is as it was: helm rolled back),
        the deployment started is marked ``error``, and nobody is notified of a failure."""
        self._send(sha, Report("success", "still deployed: a forced redeploy failed", "error"))

    def attempt_failed(self, sha: str, attempt: int, max_attempts: int, error: str) -> None:
        """Attempt ``attempt`` on ``sha`` failed with ``error`` (the last one: given up)."""
        # ``error`` comes masked (Cycle.fail): no secret reaches GitHub or NOTIFY_URL.
        self._send(sha, failure(attempt, max_attempts, error), error)

    def _send(self, sha: str, report: Report, error: str | None = None) -> None:
        s = self._settings
        if self._on["statuses"]:
            self._try(
                "statuses",
                lambda: self._github.post_status(
                    sha, report.state, s.status_context, report.description
                ),
            )
        if self._on["deployments"]:
            self._try("deployments", lambda: self._deploy(sha, report))
        if self._on["notify"] and report.event:
            self._try("notify", lambda: self._notify(notification(s, sha, report, error)))

    def _deploy(self, sha: str, report: Report) -> None:
        if self._deployment is None:
            if report.deployment != "in_progress":
                return  # failed before anything was deployed: no deployment to speak of
            environment = self._settings.environment
            self._deployment = self._github.create_deployment(sha, environment, "ci-runner")
        self._github.post_deployment_status(self._deployment, report.deployment, report.description)

    def _notify(self, body: dict[str, object]) -> None:
        s = self._settings
        assert s.notify_url is not None
        try:
            answer = requests.post(
                s.notify_url, json=body, timeout=s.api_timeout, verify=s.verify_https
            )
        except requests.RequestException as e:
            # The exception's text can hold the URL, itself a secret (a Slack webhook).
            raise CiRunnerError(f"NOTIFY_URL is unreachable: {type(e).__name__}") from e
        with answer:
            if answer.status_code >= 300:
                raise CiRunnerError(f"NOTIFY_URL answered {answer.status_code}")

    def _try(self, kind: str, send: Callable[[], object]) -> None:
        try:
            send()
        except CiRunnerError as e:
            self._on[kind] = False
            log.warning("%s", _warning(kind, e))


def _warning(kind: str, error: CiRunnerError) -> str:
    """The one line a run logs when ``kind`` of report cannot be sent."""
    if kind == "notify":
        return f"could not notify: {error}; no more notifications this run"
    text = f"{error}; no more {'commit statuses' if kind == 'statuses' else kind} this run"
    if isinstance(error, GitHubRefused):
        asks = f"; GitHub asks for {error.wanted}" if error.wanted else ""
        text += f": the credentials need {PERMISSIONS[kind]}{asks}"
    return text
