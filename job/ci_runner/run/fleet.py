"""``ci-runner fleet``: one scheduled check of many apps, a Job only where there is work.

The per-app CronJobs stay what they are (each app's settings, identity and credentials, in its
pod template); the fleet reads them, their state and their Jobs in three lists, asks GitHub for
every app's head with its own read-only token and ETags, and for each app with work creates the
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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from .. import logs
from ..config import FleetSettings, Settings, load
from ..errors import ConfigError, KubernetesError
from ..github.heads import Asked, Heads, Question
from ..kube import client as kube
from ..kube import fleet as k
from ..kube.client import Obj
from ..kube.state import from_configmap
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


def run(settings: FleetSettings) -> FleetOutcome:
    """One fleet run. Raises ConfigError (exit 2) for the fleet's own configuration and
    KubernetesError (exit 3) when the lists cannot be read; an app's trouble is that app's."""
    s = settings
    ns = s.cicd_namespace
    with kube.connect(s.verify_ssl, s.api_timeout, "ci-runner-fleet") as api:
        token = k.read_token(api, ns, s.fleet_token_secret)
        logs.learn(token)
        record = k.read_record(api, ns, s.fleet_record)
        cronjobs = k.list_cronjobs(api, ns, s.fleet_selector)
        states = k.list_states(api, ns)
        active = k.active_jobs(api, ns)
        return Fleet(s, api, record, token).run(cronjobs, states, active)


class Fleet:
    """One fleet run's connections and what it learns, app by app."""

    def __init__(self, settings: FleetSettings, api: kube.Kube, record: k.Record, token: str):
        self.settings = settings
        self.kube = api
        self.record = record
        self.token = token
        self.entries: dict[str, k.Entry] = {}
        self.tally = Tally()

    def run(
        self, cronjobs: list[Obj], states: dict[str, Obj], active: dict[str, str]
    ) -> FleetOutcome:
        apps = [app for cj in cronjobs if (app := self.app(cj)) is not None]
        asked = self.ask(apps)
        if asked.refused:
            raise ConfigError([f"{asked.refused}: check FLEET_TOKEN_SECRET"])
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
        with Heads(
            s.github_api_url,
            self.token,
            s.api_timeout,
            s.verify_ssl is not False,
            s.fleet_concurrency,
        ) as heads:
            return heads.ask(questions, time.monotonic() + s.fleet_deadline)

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
