"""One check-build-deploy cycle: the one place that joins GitHub, state, build and helm.

``Cycle.run`` reads top to bottom as the README's seven steps. What to do is decided by the pure
``plan.decide``; this module only carries it out. The ``Cycle`` holds only the run's connections
(GitHub, the state store, the Lease, Events, the reporter); what a step learns it returns as a
small frozen record (``Commit``, ``Plan``, ``Built``, ``Outcome``) that the next step takes.
helm (pyhelm3, YAML), the archive and the build are imported only by the steps that use them,
so a run with nothing to do never loads them.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import stopping
from ..config import Settings
from ..errors import BadCommit, ConfigError, DeployError, GitHubError, KubernetesError
from ..github.answers import Reported
from ..github.client import GitHub
from ..kube import client as kube
from ..kube import token_secret
from ..kube.events import Recorder
from ..kube.lease import Lease
from ..kube.state import Checks, State, StateStore
from ..logs import mask
from .auth import authenticate
from .plan import (
    Action,
    Plan,
    Verdict,
    decide,
    gate,
    pinned,
    rollback_target,
    skip_marker,
    unwatched,
)
from .report import Reporter

if TYPE_CHECKING:
    from ..helm.deploy import Deploy, Helm

log = logging.getLogger(__name__)

FAILED = 1
"""The exit code of a cycle whose build or deploy failed (an attempt was counted)."""
UNAVAILABLE = 3
"""The exit code when something outside is in the way (here: another run holds the Lease)."""
UNBUILT_DIGEST = "sha256:" + "0" * 64
"""What the chart is rendered with before the build, where the pushed digest will go."""
LAST_LOG_LINES = 5
"""Build log lines kept in the recorded last error (the whole error is cut at 1000 chars)."""


@dataclass(frozen=True)
class Commit:
    """The branch head as GitHub answered: step 2's result."""

    sha: str
    etag: str | None
    """The ETag to store with ``sha``: a 304 for it next time means the head is unchanged."""
    message: str | None
    """The commit's message; None when GitHub answered 304 (unchanged)."""


@dataclass(frozen=True)
class Built:
    """Step 5's result: the build failed (``error``), or pushed the image (as ``digest``,
    when it could be read)."""

    error: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How the cycle ended: what the CLI prints and the exit code."""

    message: str
    exit_code: int = 0


def rollback(settings: Settings, to: str | None) -> Outcome:
    """``ci-runner rollback``: redeploy a recorded deploy, then pin the release there."""
    with (
        kube.connect(settings.verify_ssl, settings.api_timeout) as api,
        GitHub(settings) as github,
    ):
        return Cycle(settings, api, github, force=True).rollback(to)


def run(settings: Settings, *, dry_run: bool = False, force: bool = False) -> Outcome:
    """Run one cycle. Raises CiRunnerError subclasses for configuration and service failures."""
    with (
        kube.connect(settings.verify_ssl, settings.api_timeout) as api,
        GitHub(settings) as github,
    ):
        return Cycle(settings, api, github, force).run(dry_run)


class Cycle:
    """One run's cycle: its settings and connections; the steps pass everything else."""

    def __init__(self, settings: Settings, api: kube.Kube, github: GitHub, force: bool) -> None:
        self.settings = settings
        self.kube = api
        self.github = github
        self.force = force
        self.store = StateStore(api, settings)
        self.lease = Lease(api, settings)
        self.events = Recorder(api, settings)
        self.report = Reporter(settings, github)
        self.credentials: Callable[[], str] | None = None
        """The App's installation token source, once authenticated (None: not an App)."""

    def run(self, dry_run: bool) -> Outcome:
        """The README's seven steps."""
        s = self.settings
        state = self.store.read()  # 1. the state
        held = pinned(state)
        if held is not None:  # not even GitHub is asked: nothing will be deployed
            if self.force:
                raise ConfigError([f"run --force refused: {held}"])
            return Outcome(held)
        if state.resource_version is None and s.create_namespace and not dry_run:
            # No state yet: a first run, or CICD_NS is missing (the first write would say so).
            labels = kube.CICD_NAMESPACE_LABELS
            if self.kube.ensure_namespace(s.cicd_namespace, "CICD_NS", labels):
                log.info("created namespace %s (Pod Security enforce: baseline)", s.cicd_namespace)
        self.credentials = authenticate(self.kube, self.github, s, store=not dry_run)
        commit = self.ask_head(state)  # 2. the head, asked conditionally
        skipped = self.check_head(commit, state, dry_run)  # its ETag kept; [skip ci], WATCH_PATHS
        if skipped is not None:
            return skipped
        plan = decide(commit.sha, state, s.max_attempts, self.force)  # 3. decide
        gated = self.gate(commit, plan, state, dry_run)  # REQUIRE_CHECKS
        if gated is not None:
            return gated
        log.info("%s/%s head is %s: %s", s.repo, s.branch, commit.sha[:7], plan.reason)
        if not plan.acts and not dry_run:
            return Outcome(plan.reason)
        # helm is found and asked its version before the run writes anything (Lease, build
        # Job, state): without a usable helm the run would build, then fail to deploy.
        helm = self.find_helm() if plan.acts and not dry_run else None
        with tempfile.TemporaryDirectory(prefix="ci-runner-") as tmp:
            # The chart is fetched and checked first: a commit without a usable chart must not
            # cost a build, and a bad archive deploys nothing.
            try:
                deploy = self.fetch_chart(commit, Path(tmp), helm) if plan.acts else None
                rendered = self.render(deploy, plan, dry_run) if deploy is not None else None
            except BadCommit as e:
                if dry_run:  # what a run would refuse
                    raise ConfigError([str(e)]) from e
                # The commit's own fault: one attempt, so it is given up after MAX_RETRIES.
                error = str(e)
                return self.holding_lease(
                    commit, lambda plan: self.fail(commit, plan, "BadCommit", error)
                )
            if dry_run:
                # Not at the top: the dry run's report needs YAML and helm, an idle run neither.
                from .dryrun import check_cluster, describe

                namespaces = check_cluster(self.kube, s)  # what a run would refuse, refused now
                return Outcome(describe(s, state, plan, deploy, namespaces, rendered))
            assert deploy is not None
            return self.holding_lease(commit, lambda plan: self.act(commit, plan, deploy))

    def rollback(self, to: str | None) -> Outcome:
        """Redeploy the recorded deploy ``to`` (default: the one before the current) with the
        chart of its commit and its recorded image: no build. Then pin the release there, so
        that no scheduled run deploys the branch head over it."""
        s = self.settings
        try:
            target = rollback_target(self.store.read(), to)
        except ValueError as e:
            raise ConfigError([str(e)]) from e
        helm = self.find_helm()  # before anything is written, as for a run
        self.credentials = authenticate(self.kube, self.github, s, store=True)
        commit = Commit(target.sha, None, None)
        with tempfile.TemporaryDirectory(prefix="ci-runner-") as tmp:
            deploy = self.fetch_chart(commit, Path(tmp), helm).pinned(target.sha, target.digest)
            holder = self.lease.try_acquire()
            if holder is not None:
                return Outcome(
                    f"another run ({holder.identity}) holds {self.lease.where}: "
                    "roll back when it is done",
                    UNAVAILABLE,
                )
            with self.lease.renewing():
                return self.rolled_back(commit, target.digest, deploy)

    def rolled_back(self, commit: Commit, digest: str | None, deploy: Deploy) -> Outcome:
        s = self.settings
        sha = commit.sha
        self.report.deploying(sha)
        try:
            revision = self.upgrade(deploy)
        except DeployError as e:
            stopping.check()
            return Outcome(f"rollback to {sha[:7]} failed: {e} (helm rolled it back)", FAILED)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        pinned_to = digest if s.deploy_by_digest else None
        written = self.record(
            commit,
            lambda current: current.deployed(
                sha, now, revision, pinned_to, s.history_limit, "rollback"
            ).pinned(now),
        )
        message = (
            f"rolled back to {sha[:7]} as {s.deploy_namespace}/{s.release} revision {revision}; "
            "pinned there: `ci-runner unpin` lets the next run deploy the branch head again"
        )
        self.events.emit(written.uid, "RolledBack", message)
        self.report.deployed(sha, revision)
        return Outcome(message)

    def holding_lease(self, commit: Commit, work: Callable[[Plan], Outcome]) -> Outcome:
        """4. Take the Lease, decide again, and do ``work`` while holding it."""
        holder = self.lease.try_acquire()
        if holder is not None:
            s = self.settings
            return Outcome(
                f"another run ({holder.identity}) holds {self.lease.where}; "
                f"leaving {s.repo}@{commit.sha[:7]} to it"
            )
        with self.lease.renewing():
            # Another run may have finished between our first read and taking the Lease.
            state = self.store.read()
            plan = decide(commit.sha, state, self.settings.max_attempts, self.force)
            if not plan.acts:
                return Outcome(plan.reason)
            return work(plan)

    def ask_head(self, state: State) -> Commit:
        """The branch head, asked with the stored ETag so an unchanged head costs no rate limit."""
        etag = state.etag if state.etag_sha else None
        answer = self.github.head(self.settings.branch, etag)
        if answer.sha is None:  # 304: unchanged since the ETag we stored with etag_sha
            assert state.etag_sha is not None
            return Commit(state.etag_sha, etag, answer.message)
        return Commit(answer.sha, answer.etag, answer.message)

    def check_head(self, commit: Commit, state: State, dry_run: bool) -> Outcome | None:
        """What GitHub's answer asks before deciding: a new ETag for the head we know is kept
        (dry runs write nothing); a head that asks not to be built is skipped (the Outcome)."""
        if not dry_run:
            self.keep_etag(commit, state)
        return self.skip_check(commit, state, dry_run)

    def keep_etag(self, commit: Commit, state: State) -> None:
        """GitHub answered 200 for the very head the stored ETag stands for (its answer changed
        shape: the runner used to ask for the bare SHA): store the new ETag, else no run would
        write it while the head stays and none would get a free 304 again."""
        fresh = commit.message is not None and commit.etag and commit.etag != state.etag
        if not fresh or commit.sha != state.etag_sha:
            return
        try:
            self.store.update(lambda current: current.with_etag(commit.sha, commit.etag))
        except KubernetesError as e:  # the next run tries again; nothing else depends on it
            log.warning("could not store GitHub's new ETag for %s: %s", commit.sha[:7], e)

    def skip_check(self, commit: Commit, state: State, dry_run: bool) -> Outcome | None:
        """A new head that asks not to be built is recorded as skipped instead: the Outcome.
        None: go on (decide() knows a head deployed, skipped or under way; --force builds)."""
        s = self.settings
        head = commit.sha
        if self.force or head in {state.deployed_sha, state.skipped_sha, state.pending_sha}:
            return None
        if state.checks is not None and state.checks.sha == head:
            return None  # waiting for its checks: an earlier run found it not to be skipped
        reason = self.skip_reason(commit, state)
        if reason is None:
            return None
        message = f"skipped {head[:7]} ({reason}): not built or deployed"
        if dry_run:
            line = f"commit:  {head} ({s.repo} branch {s.branch})"
            return Outcome(f"{line}\nplan:    {message}\ndry run: nothing was written")
        return self.holding_lease(commit, lambda plan: self.skipped(commit, message, reason))

    def skip_reason(self, commit: Commit, state: State) -> str | None:
        """Why the head need not be built, or None: a skip marker in its message, or (with
        WATCH_PATHS) no watched change since the deployed commit. With nothing deployed yet, or
        when GitHub cannot compare, it is built: never skipped on a doubt."""
        marker = skip_marker(commit.message)
        if marker:
            return f"its message says {marker}"
        s = self.settings
        if not s.watch_paths or state.deployed_sha is None:
            return None
        try:
            changes = self.github.compare(state.deployed_sha, commit.sha)
        except GitHubError as e:
            log.warning("%s; building %s, as WATCH_PATHS cannot be checked", e, commit.sha[:7])
            return None
        log.info(
            "since %s the head is %s with %d changed file(s) listed",
            changes.base[:7],
            changes.status,
            changes.listed,
        )
        unchanged = unwatched(s.watch_paths, s.chart_path, changes)
        return unchanged.reason if unchanged is not None else None

    def gate(self, commit: Commit, plan: Plan, state: State, dry_run: bool) -> Outcome | None:
        """With REQUIRE_CHECKS, a head is built only once GitHub reports its checks passed:
        None (go on), or the Outcome of a head that waits (exit 0, nothing built, no attempt)
        or whose check failed (skipped as a ``[skip ci]`` head is). A forced run, and a retry
        (its first attempt passed the gate), are not gated.

        While it waits, both answers are kept with their ETags (and the head's ETag with it):
        the next run asks the head (a free 304) and the two lists conditionally, so waiting
        costs at most two requests a run, and none of the rate limit while nothing changed."""
        s = self.settings
        if not s.require_checks or self.force or not plan.acts or plan.attempt > 1:
            return None
        sha = commit.sha
        kept = state.checks if state.checks is not None and state.checks.sha == sha else None
        # A 304 (None) means: what was kept for that ETag still stands.
        runs = self.github.check_runs(sha, kept.runs_etag if kept else None) or (
            Reported(kept.runs_etag, kept.runs) if kept else None
        )
        statuses = self.github.combined_status(sha, kept.statuses_etag if kept else None) or (
            Reported(kept.statuses_etag, kept.statuses) if kept else None
        )
        if runs is None or statuses is None:  # a 304 to a question asked without an ETag
            raise GitHubError(f"GitHub answered 304 for the checks of {sha[:7]} asked afresh")
        seen = Checks(sha, runs.etag, runs.states, statuses.etag, statuses.states)
        verdict = gate(s.require_checks, seen.runs, seen.statuses, s.status_context)
        where = f"{s.repo}@{sha[:7]}"
        if verdict.verdict is Verdict.PASS:
            log.info("%s: %s", where, verdict.reason)
            return None
        if verdict.verdict is Verdict.WAIT:
            message = f"{where} is not built yet: {verdict.reason}"
            if dry_run:
                return Outcome(f"commit:  {sha}\nplan:    {message}\ndry run: nothing was written")
            if seen != kept or commit.etag != state.etag:
                self.keep_checks(commit, seen)
            return Outcome(message)
        message = f"skipped {sha[:7]} ({verdict.reason}): not built or deployed"
        if dry_run:
            return Outcome(f"commit:  {sha}\nplan:    {message}\ndry run: nothing was written")
        reason = f"{verdict.reason}; push a fix, or `ci-runner run --force`"
        return self.holding_lease(commit, lambda plan: self.skipped(commit, message, reason))

    def keep_checks(self, commit: Commit, seen: Checks) -> None:
        """Keep what GitHub answered for a waiting head, and the head's ETag: a failure to
        keep them costs the next run full requests, nothing else."""
        try:
            self.store.update(
                lambda current: current.waiting(seen).with_etag(commit.sha, commit.etag)
            )
        except KubernetesError as e:
            log.warning("could not keep the checks of %s: %s", commit.sha[:7], e)

    def skipped(self, commit: Commit, message: str, reason: str | None = None) -> Outcome:
        """Record the head as skipped: later runs on it are free 304s that do nothing."""
        written = self.record(commit, lambda current: current.skipped(commit.sha, reason))
        self.events.emit(written.uid, "Skipped", message)
        return Outcome(message)

    @staticmethod
    def find_helm() -> Helm:
        """helm on PATH, runnable, of a supported version (ConfigError: exit 2)."""
        # Not at the top: pyhelm3 is not for an idle run.
        from ..helm.deploy import Helm

        return Helm.find()

    def fetch_chart(self, commit: Commit, tmp: Path, helm: Helm | None = None) -> Deploy:
        """Download the head's tarball, extract CHART_PATH safely, read its values files."""
        # Not at the top: tarfile, pyhelm3 and YAML are not for an idle run.
        from ..archive import extract_chart
        from ..helm.deploy import Deploy
        from ..helm.values import chart_values

        s = self.settings
        where = f"{s.repo}@{commit.sha[:7]}"
        with self.github.tarball(commit.sha) as tarball:
            chart_dir = extract_chart(tarball, s.chart_path, tmp, where, s.tarball_timeout)
        return Deploy(s, chart_dir, chart_values(s, chart_dir, commit.sha), helm)

    def render(self, deploy: Deploy, plan: Plan, dry_run: bool) -> bool | None:
        """The chart rendered by ``helm template`` with the values the deploy will give it,
        before anything is built: a template error is the commit's (BadCommit) and costs no
        build. The digest of an image not built yet is a stand-in of the same shape. True
        when rendered; None when a dry run has no usable helm to ask."""
        s = self.settings
        if dry_run and deploy.helm is None:
            # Not at the top: pyhelm3 is not for an idle run.
            from ..helm.deploy import Helm

            try:
                deploy = replace(deploy, helm=Helm.find())
            except ConfigError as e:  # a dry run may be made where helm is not
                log.warning("the chart is not rendered: %s", e)
                return None
        digest = plan.digest or (UNBUILT_DIGEST if s.deploy_by_digest else None)
        where = f"{s.repo}@{plan.sha[:7]}"
        deploy.pinned(plan.sha, digest).render(where, self.kube.server_version())
        log.info("helm template renders the chart of %s with its values", where)
        return True

    def act(self, commit: Commit, plan: Plan, deploy: Deploy) -> Outcome:
        """Build when needed, then deploy (by the digest pushed, or recorded by an earlier
        attempt that built this commit)."""
        built = Built(digest=plan.digest)
        if plan.action is Action.BUILD_AND_DEPLOY:
            built = self.build(commit, plan)  # 5. the build
            if built.error is not None:
                return self.fail(commit, plan, "BuildFailed", built.error)
        stopping.check()  # a stop asked for during the build: no helm that would be cut short
        pinned = deploy.pinned(plan.sha, built.digest)
        return self.deploy(commit, plan, pinned, built.digest)  # 6. and 7.

    def build(self, commit: Commit, plan: Plan) -> Built:
        """Build and push the head's image."""
        # Not at the top: the build's code is not for an idle run.
        from ..kube.build_job import Builder, check_secrets

        s = self.settings
        check_secrets(self.kube, s)
        builder = Builder(self.kube, s)
        token_secret.keep_git_token(self.kube, s)
        if self.credentials is not None:
            # The build pod's init container fetches the context with the token the Secret
            # holds when it starts: renewed now if the tarball's download took it under the
            # margin (a renewal is kept there).
            self.credentials()
        # The nonce makes a fresh Job name for a forced build, or when a failed Job of the same
        # name exists: such a Job's failure was counted already and is never adopted again.
        job = builder.start(plan.sha, plan.attempt, self.lease.identity[-5:], fresh=self.force)
        # Only now: a Job the API server refuses (a BUILD_POD field it does not know) is exit 2
        # and must leave no "building" status behind on the commit.
        self.report.building(plan.sha)
        result = builder.wait(job)
        outside = (ConfigError.exit_code, GitHubError.exit_code)
        if not result.succeeded and result.fetch_exit in outside:
            # The init container could not fetch the context: GitHub failed (3) or the
            # settings it was given are wrong (2). Not the commit's fault, so no attempt is
            # counted; the next run finds this Job failed and builds under a new name.
            said = f"build Job {job}: {result.reason}"
            if result.fetch_exit == ConfigError.exit_code:
                raise ConfigError([said])
            raise GitHubError(said)
        if not result.succeeded:
            error = f"build Job {job} failed: {result.reason}"
            if result.log_tail:
                log.error("build pod log (last lines):\n%s", result.log_tail.rstrip())
                # The recorded error keeps the log's end too, so `status` tells the story.
                last = " | ".join(result.log_tail.strip().splitlines()[-LAST_LOG_LINES:])
                error += f"; log: {last}"
            return Built(error=error)
        digest = builder.pushed_digest(job, plan.sha) if s.deploy_by_digest else None
        self.record(commit, lambda current: current.built(plan.sha, digest))
        log.info("built %s:%s and %s:%s", s.image, plan.sha, s.image, s.latest_tag)
        return Built(digest=digest)

    def deploy(
        self, commit: Commit, plan: Plan, deploy: Deploy, digest: str | None = None
    ) -> Outcome:
        """helm upgrade --install, rolled back by helm on failure; then the record."""
        s = self.settings
        self.lease.check()
        if s.create_namespace and self.kube.ensure_namespace(s.deploy_namespace, "DEPLOY_NS"):
            log.info("created namespace %s", s.deploy_namespace)
        self.report.deploying(plan.sha)
        try:
            revision = self.upgrade(deploy)
        except DeployError as e:
            stopping.check()  # helm was stopped by our SIGTERM: not the commit's failure
            return self.fail(commit, plan, "DeployFailed", f"{e} (rolled back)")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        pinned = digest if s.deploy_by_digest else None
        how = "forced" if self.force else "build"
        image = f"{s.image}:{plan.sha}" + (f"@{pinned}" if pinned else "")
        message = (
            f"deployed {plan.sha[:7]} as {s.deploy_namespace}/{s.release} revision {revision} "
            f"(image {image})"
        )
        try:
            written = self.record(
                commit,
                lambda current: current.deployed(
                    plan.sha, now, revision, pinned, s.history_limit, how
                ),
            )
        except KubernetesError as e:
            # helm's work stands; the next run redeploys the same commit (a no-change upgrade)
            # and records it then.
            raise KubernetesError(f"{message}, but the state was not recorded: {e}") from e
        self.events.emit(written.uid, "Deployed", message)
        self.report.deployed(plan.sha, revision)
        return Outcome(message)

    def upgrade(self, deploy: Deploy) -> int:
        """helm upgrade --install; the new revision. The Lease says a helm runs (so that the run
        after a crash knows the pending release it finds is a dead helm's), and losing the
        Lease kills that helm."""
        # Not at the top: pyhelm3 is not for an idle run.
        from ..helm.deploy import kill_helm

        try:
            with self.lease.running_helm(kill_helm):
                return deploy.run(self.lease.orphaned_helm)
        except KubernetesError:
            # helm lost the API, or was refused acting as DEPLOYER (which helm 4 words as an
            # unreachable cluster): the second is the setup's fault, exit 2, and said so.
            user = self.settings.deployer_user
            if user is not None:
                self.kube.check_acting_as(user, "DEPLOYER")
            raise

    def record(self, commit: Commit, change: Callable[[State], State]) -> State:
        """Write ``change`` to the state (with the head's ETag), unless the Lease was lost; the
        state written (its uid names the ConfigMap in Events)."""
        self.lease.check()
        return self.store.update(lambda current: change(current).with_etag(commit.sha, commit.etag))

    def fail(self, commit: Commit, plan: Plan, reason: str, error: str) -> Outcome:
        """Count the failed attempt in the state and tell the user how many are left. A forced
        run on the deployed commit counts nothing: a ConfigError (exit 2)."""
        n = self.settings.max_attempts
        # The error may quote a build log or helm's output: no secret is kept or posted.
        error = mask(error, self.settings.secret_values)
        if plan.redeploy:
            self.report.still_deployed(plan.sha)
            raise ConfigError(
                [
                    f"run --force on {plan.sha[:7]}, the deployed commit, failed: {error}; the "
                    "same commit deployed before, so what changed is the configuration "
                    "(settings, Secrets, the cluster), not the commit: no attempt was counted "
                    f"and {plan.sha[:7]} is still deployed"
                ]
            )
        written = self.record(commit, lambda current: current.attempt_failed(plan.sha, error))
        used = written.attempts_for(plan.sha)
        then = f"{n - used} attempt(s) left" if used < n else "giving up on it"
        message = f"attempt {used}/{n} on {plan.sha[:7]} failed: {error}; {then}"
        self.events.emit(written.uid, reason, message, warning=True)
        self.report.attempt_failed(plan.sha, used, n, error)
        return Outcome(message, FAILED)


def pin(settings: Settings, *, on: bool) -> str:
    """``ci-runner pin`` (``on``) or ``unpin``: what it did, in one line. Pinning needs a
    deployed commit; both are recorded as an Event on the state ConfigMap."""
    with kube.connect(settings.verify_ssl, settings.api_timeout) as api:
        store = StateStore(api, settings)
        state = store.read()
        if on and state.deployed_sha is None:
            raise ConfigError(
                [f"nothing is deployed for release {settings.release} yet: nothing to pin"]
            )
        if on:
            now = datetime.now(UTC).isoformat(timespec="seconds")
            written = store.update(lambda current: current.pinned(now))
            message = pinned(written) or ""
        else:
            written = store.update(lambda current: current.unpinned())
            message = (
                f"unpinned {settings.release}: the next run deploys the head of {settings.branch}"
            )
        Recorder(api, settings).emit(written.uid, "Pinned" if on else "Unpinned", message)
        return message
