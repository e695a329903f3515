"""``ci-runner fleet``: one scheduled check of many apps, a Job only where there is work.

The per-app CronJobs stay what they are (each app's settings, identity and credentials, in its
pod template); the fleet reads them, their state and their Jobs in three lists, asks GitHub for
every app's head with its own read-only credential and ETags, and for each app with work creates the
Job ``kubectl create job --from=cronjob/<app>`` would. That Job's run then does the app's cycle
as its own scheduled run would. The fleet never builds, deploys, or reads an app's credentials;
it writes only Jobs, its own record and Events.

What to do for each app is decided by ``plan.fleet_call``; this module joins Kubernetes and
GitHub for it, and keeps one app's trouble (bad settings, a repository the token cannot read, a
Job refused) to that app: an Event on its CronJob, its name in the summary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from .. import logs
from ..config import FleetSettings, Settings, load
from ..errors import ConfigError, Conflict, KubernetesError
from ..github.app import app_jwt
from ..github.client import AppNames, GitHub
from ..github.heads import Asked, Heads, Question
from ..kube import client as kube
from ..kube import fleet as k
from ..kube.client import Obj
from ..kube.state import from_configmap
from .auth import InstallationToken, Mint
from .plan import fleet_call

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class App:
    """One app of the fleet: its CronJob and the settings its pod template holds."""

    name: str
    cronjob: Obj
    settings: Settings


@dataclass
class Tally:
    """What the run did, for its output."""

    created: list[str] = field(default_factory=list)
    """One line per Job created."""
    running: int = 0
    idle: int = 0
    suspended: int = 0
    problems: dict[str, str] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)
    why_deferred: str = ""
    requests: int = 0
    billable: int = 0

    def summary(self, apps: int) -> str:
        parts = [
            f"fleet: {apps} app(s)",
            f"{len(self.created)} Job(s) created",
            f"{self.running} with a Job running",
            f"{self.idle} idle",
        ]
        if self.suspended:
            parts.append(f"{self.suspended} suspended")
        if self.problems:
            parts.append(f"{len(self.problems)} with problems ({', '.join(sorted(self.problems))})")
        if self.deferred:
            parts.append(
                f"{len(self.deferred)} not asked this run, asked first by the next "
                f"({self.why_deferred})"
            )
        parts.append(f"GitHub: {self.requests} request(s), {self.billable} billable")
        return "; ".join(parts)


@dataclass(frozen=True)
class FleetOutcome:
    lines: list[str]
    summary: str


class Credential(Protocol):
    """What the fleet asks GitHub with: a token good for this run (asked once per round of
    questions: a round lasts at most FLEET_DEADLINE, far less than an installation token's
    RENEW_BEFORE margin), and whether a token GitHub refused is worth replacing."""

    def __call__(self) -> str: ...

    def refused(self, token: str) -> bool: ...


class FixedToken:
    """FLEET_TOKEN_SECRET's token: the same for every run; a refused one is the user's to fix."""

    def __init__(self, token: str) -> None:
        logs.learn(token)
        self._token = token

    def __call__(self) -> str:
        return self._token

    def refused(self, token: str) -> bool:
        return False


@dataclass(frozen=True)
class _Minting:
    """The settings ``GitHub`` reads, for exchanging the App's JWT only (no repository)."""

    github_api_url: str
    api_timeout: int
    verify_https: bool
    repo: str = ""
    tarball_timeout: int = 0
    git_token: str | None = None
    uses_app: bool = True


def app_credential(api: kube.Kube, settings: FleetSettings, stack: ExitStack) -> InstallationToken:
    """FLEET_APP_SECRET's App as a credential: the installation token kept in
    FLEET_APP_TOKEN_SECRET while it is good for over ``token_secret.RENEW_BEFORE``, else a new
    one, kept there for the runs after. Kept because GitHub's ETags are per credential: a new
    token each run would make every conditional request a billable 200."""
    s = settings
    ns = s.cicd_namespace
    assert s.fleet_app_secret
    where = f"FLEET_APP_SECRET {ns}/{s.fleet_app_secret}"
    key = k.read_app(api, ns, s.fleet_app_secret)
    logs.learn(key.private_key)
    github = stack.enter_context(
        GitHub(_Minting(s.github_api_url, s.api_timeout, s.verify_ssl is not False))
    )

    def mint(now: datetime) -> tuple[str, datetime]:
        jwt = app_jwt(key.app_id, key.private_key, now)
        logs.learn(jwt)
        # A refusal names the keys of FLEET_APP_SECRET, not the single runner's settings.
        named = AppNames("its 'private-key'", "its 'app-id'", "its 'installation-id'")
        try:
            return github.installation_token(jwt, key.installation, named)
        except ConfigError as e:
            raise ConfigError([f"{where}: {problem}" for problem in e.problems]) from e

    name = f"the fleet's App {key.app_id} (installation {key.installation})"
    return kept_installation_token(api, s, name, mint)


def kept_installation_token(
    api: kube.Kube,
    settings: FleetSettings,
    name: str,
    mint: Mint,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> InstallationToken:
    """The installation token kept in FLEET_APP_TOKEN_SECRET as a credential: reused while good
    for over RENEW_BEFORE, else ``mint``ed and kept there (an update by name)."""
    s = settings
    ns = s.cicd_namespace
    kept = k.read_kept(api, ns, s.fleet_app_token_secret)

    def keep(token: str, expires: datetime) -> None:
        nonlocal kept
        try:
            kept = k.keep_token(api, kept, token, expires)
        except Conflict:
            # Another fleet run renewed it meanwhile; ours is good for this run.
            log.info("another fleet run renewed the installation token first")
        except KubernetesError as e:
            if e.status != 403:
                raise
            raise ConfigError(
                [
                    f"FLEET_APP_TOKEN_SECRET {ns}/{s.fleet_app_token_secret}: this identity may "
                    f"not update it ({e}); the fleet's Role grants the chart's name"
                ]
            ) from e

    return InstallationToken(mint, keep, name, kept.token, kept.expires, now)


def run(settings: FleetSettings) -> FleetOutcome:
    """One fleet run. Raises ConfigError (exit 2) for the fleet's own configuration and
    KubernetesError (exit 3) when the lists cannot be read; an app's trouble is that app's."""
    s = settings
    ns = s.cicd_namespace
    with ExitStack() as stack:
        api = stack.enter_context(kube.connect(s.verify_ssl, s.api_timeout, "ci-runner-fleet"))
        credential: Credential
        if s.fleet_app_secret:
            credential = app_credential(api, s, stack)
        else:
            assert s.fleet_token_secret  # load() requires one of the two
            credential = FixedToken(k.read_token(api, ns, s.fleet_token_secret))
        credential()  # now: a refused App key ends the run (exit 2) before anything is asked
        record = k.read_record(api, ns, s.fleet_record)
        cronjobs = k.list_cronjobs(api, ns, s.fleet_selector)
        states = k.list_states(api, ns)
        active = k.active_jobs(api, ns)
        return Fleet(s, api, record, credential).run(cronjobs, states, active)
    raise AssertionError("unreachable")  # mypy: ExitStack may swallow exceptions


class Fleet:
    """One fleet run's connections and what it learns, app by app."""

    def __init__(
        self, settings: FleetSettings, api: kube.Kube, record: k.Record, credential: Credential
    ):
        self.settings = settings
        self.kube = api
        self.record = record
        self.credential = credential
        self.entries: dict[str, k.Entry] = {}
        self.tally = Tally()

    def run(
        self, cronjobs: list[Obj], states: dict[str, Obj], active: dict[str, str]
    ) -> FleetOutcome:
        apps = [app for cj in cronjobs if (app := self.app(cj)) is not None]
        asked = self.ask(apps)
        if asked.refused:
            setting = "FLEET_APP_SECRET" if self.settings.fleet_app_secret else "FLEET_TOKEN_SECRET"
            raise ConfigError([f"{asked.refused}: check {setting}"])
        now = datetime.now(UTC)
        for app in apps:
            answer = asked.answers.get(app.name)
            if answer is None:
                continue  # deferred: its entry is kept as it was
            entry = self.entries[app.name]
            if answer.problem is not None:
                self.problem(app.cronjob, "FleetHeadUnknown", answer.problem)
                continue
            head = entry.sha if answer.unchanged else answer.sha
            if head is None:  # a 304 to a question asked without an ETag: not GitHub's way
                self.problem(app.cronjob, "FleetHeadUnknown", "GitHub answered 304 to nothing")
                continue
            if not answer.unchanged:
                self.entries[app.name] = replace(entry, sha=answer.sha, etag=answer.etag)
            self.decide(app, head, states, active, now)
        self.tally.deferred = asked.deferred
        self.tally.why_deferred = asked.why_deferred
        self.tally.requests = len(asked.answers)
        self.tally.billable = sum(a.billable for a in asked.answers.values())
        k.write_record(
            self.kube, self.record, self.entries, asked.not_before, tuple(asked.deferred)
        )
        return FleetOutcome(self.tally.created, self.tally.summary(len(cronjobs)))

    def app(self, cronjob: Obj) -> App | None:
        """The app a CronJob runs, with its settings read from its pod template as its own
        run reads them (values from Secrets are left out, never resolved); None, reported,
        when they do not validate or name another GitHub than the fleet's."""
        name = str(cronjob["metadata"]["name"])
        self.entries[name] = self.record.entries.get(name, k.Entry())
        if k.suspended(cronjob):
            self.tally.suspended += 1
            return None
        plain, _ = k.environment(cronjob)
        try:
            settings = load(Settings, {}, plain)
        except ConfigError as e:
            self.problem(cronjob, "FleetBadSettings", f"the app's settings are wrong: {e}")
            return None
        if settings.github_api_url != self.settings.github_api_url:
            self.problem(
                cronjob,
                "FleetBadSettings",
                f"the app's GITHUB_API_URL is {settings.github_api_url}, the fleet's "
                f"{self.settings.github_api_url}: give it a fleet of its own (FLEET_SELECTOR)",
            )
            return None
        return App(name, cronjob, settings)

    def ask(self, apps: list[App]) -> Asked:
        """Every app's head, the ones the last run could not ask first; none while GitHub's
        last request to wait lasts."""
        s = self.settings
        waiting = self.record.not_before - int(time.time())
        if waiting > 0:
            why = f"GitHub asked the fleet to wait {waiting}s more"
            return Asked({}, [app.name for app in apps], self.record.not_before, why)
        first = set(self.record.deferred)
        ordered = sorted(apps, key=lambda app: (app.name not in first, app.name))
        questions = []
        for app in ordered:
            repo, branch = app.settings.repo, app.settings.branch
            kept = self.entries[app.name].etag_for(repo, branch)
            if kept is None:  # another question than the one the ETag answered
                self.entries[app.name] = k.Entry(
                    repo, branch, problem=self.entries[app.name].problem
                )
            questions.append(Question(app.name, repo, branch, kept[0] if kept else None))
        deadline = time.monotonic() + s.fleet_deadline
        while True:
            token = self.credential()
            verify = s.verify_ssl is not False
            with Heads(
                s.github_api_url, token, s.api_timeout, verify, s.fleet_concurrency
            ) as heads:
                asked = heads.ask(questions, deadline)
            # A kept installation token GitHub refused (revoked before its expires_at) is
            # replaced once, and the round asked again; any other refusal is configuration.
            if not (asked.refused and self.credential.refused(token)):
                return asked

    def decide(
        self, app: App, head: str, states: dict[str, Obj], active: dict[str, str], now: datetime
    ) -> None:
        """Create the app's Job if it has work; count it otherwise."""
        state = from_configmap(states.get(app.settings.state_configmap))
        call = fleet_call(head, state, app.settings.max_attempts, active.get(app.name))
        log.debug("%s: %s", app.name, call.reason)
        if not call.job:
            if app.name in active:
                self.tally.running += 1
            else:
                self.tally.idle += 1
            self.solved(app.name)
            return
        name = k.job_name(app.name, now)
        try:
            made = k.create_job(self.kube, k.job_from_cronjob(app.cronjob, name))
        except KubernetesError as e:
            self.problem(
                app.cronjob, "FleetJobRefused", f"the fleet could not create Job {name}: {e}"
            )
            return
        self.solved(app.name)
        if not made:
            self.tally.running += 1
            log.info("%s: Job %s exists already (another fleet run's)", app.name, name)
            return
        self.tally.created.append(f"{app.name}: created Job {name} ({call.reason})")

    def problem(self, cronjob: Obj, reason: str, message: str) -> None:
        """One app's trouble: a warning, its name in the summary, and an Event on its CronJob
        when it is new (not one per run while it lasts)."""
        name = str(cronjob["metadata"]["name"])
        log.warning("%s: %s", name, message)
        self.tally.problems[name] = message
        entry = self.entries.get(name, k.Entry())
        if entry.problem != message:
            k.emit(self.kube, cronjob, reason, message)
            self.entries[name] = replace(entry, problem=message)

    def solved(self, name: str) -> None:
        entry = self.entries[name]
        if entry.problem is not None:
            self.entries[name] = replace(entry, problem=None)
