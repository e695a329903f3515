"""One check-build-deploy cycle: the one place that joins GitHub, state, build and helm.

``Cycle.run`` reads top to bottom as the README's seven steps. What to do is decided by the pure
``plan.decide``; this module only carries it out. helm (pyhelm3, YAML), the archive and the build
are imported only by the steps that use them, so a run with nothing to do never loads them.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import kube
from .errors import BadCommit, ConfigError, CycleFailed, KubernetesError
from .events import Recorder
from .github import GitHub
from .lock import Lease
from .plan import Action, Plan, decide
from .settings import Settings
from .state import State, StateStore

if TYPE_CHECKING:
    from .helm import Deploy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How the cycle ended: what the CLI prints and the exit code."""

    message: str
    exit_code: int = 0


def run(settings: Settings, *, dry_run: bool = False, force: bool = False) -> Outcome:
    """Run one cycle. Raises CiRunnerError subclasses for configuration and service failures."""
    with (
        kube.connect(settings.verify_ssl, settings.api_timeout) as api,
        GitHub(settings) as github,
    ):
        return Cycle(settings, api, github, force).run(dry_run)


class Cycle:
    """One run's cycle: the connections, the state store, the Lease, and the head commit."""

    def __init__(self, settings: Settings, api: kube.Kube, github: GitHub, force: bool) -> None:
        self.settings = settings
        self.kube = api
        self.github = github
        self.force = force
        self.store = StateStore(api, settings)
        self.lease = Lease(api, settings)
        self.events = Recorder(api, settings)
        self.head = ""
        self.etag: str | None = None
        self.uid: str | None = None
        """The state ConfigMap's uid, once it exists: Events name it."""

    def run(self, dry_run: bool) -> Outcome:
        """The README's seven steps."""
        s = self.settings
        state = self.store.read()  # 1. the state
        self.head, self.etag = self.ask_head(state)  # 2. the head, asked conditionally
        plan = decide(self.head, state, s.max_attempts, self.force)  # 3. decide
        log.info("%s/%s head is %s: %s", s.repo, s.branch, self.head[:7], plan.reason)
        if not plan.acts and not dry_run:
            return Outcome(plan.reason)
        with tempfile.TemporaryDirectory(prefix="ci-runner-") as tmp:
            # The chart is fetched and checked first: a commit without a usable chart must not
            # cost a build, and a bad archive deploys nothing.
            try:
                deploy = self.fetch_chart(Path(tmp)) if plan.acts else None
            except BadCommit as e:
                if dry_run:  # what a run would refuse
                    raise ConfigError([str(e)]) from e
                # The commit's own fault: one attempt, so it is given up after MAX_RETRIES.
                error = str(e)
                return self.holding_lease(lambda plan: self.fail(plan, "BadCommit", error))
            if dry_run:
                from .dryrun import describe

                return Outcome(describe(s, state, plan, deploy))
            assert deploy is not None
            return self.holding_lease(lambda plan: self.act(plan, deploy))

    def holding_lease(self, work: Callable[[Plan], Outcome]) -> Outcome:
        """4. Take the Lease, decide again, and do ``work`` while holding it."""
        holder = self.lease.try_acquire()
        if holder is not None:
            s = self.settings
            return Outcome(
                f"another run ({holder.identity}) holds {self.lease.where}; "
                f"leaving {s.repo}@{self.head[:7]} to it"
            )
        with self.lease.renewing():
            # Another run may have finished between our first read and taking the Lease.
            state = self.store.read()
            self.uid = state.uid
            plan = decide(self.head, state, self.settings.max_attempts, self.force)
            if not plan.acts:
                return Outcome(plan.reason)
            return work(plan)

    def ask_head(self, state: State) -> tuple[str, str | None]:
        """The branch head, asked with the stored ETag so an unchanged head costs no rate limit."""
        etag = state.etag if state.etag_sha else None
        answer = self.github.head(self.settings.branch, etag)
        if answer.sha is None:  # 304: unchanged since the ETag we stored with etag_sha
            assert state.etag_sha is not None
            return state.etag_sha, etag
        return answer.sha, answer.etag

    def fetch_chart(self, tmp: Path) -> Deploy:
        """Download the head's tarball, extract CHART_PATH safely, read its values files."""
        from .archive import extract_chart  # tarfile and friends: not for an idle run
        from .helm import Deploy, chart_values

        s = self.settings
        where = f"{s.repo}@{self.head[:7]}"
        chart_dir = extract_chart(self.github.tarball(self.head), s.chart_path, tmp, where)
        return Deploy(s, chart_dir, chart_values(s, chart_dir, self.head))

    def act(self, plan: Plan, deploy: Deploy) -> Outcome:
        """Build when needed, then deploy."""
        if plan.action is Action.BUILD_AND_DEPLOY:
            error = self.build(plan)  # 5. the build
            if error is not None:
                return self.fail(plan, "BuildFailed", error)
        return self.deploy(plan, deploy)  # 6. the deploy, and 7. the record

    def build(self, plan: Plan) -> str | None:
        """Build and push the head's image; the error when the build failed."""
        from .build import Builder  # not for an idle run

        s = self.settings
        builder = Builder(self.kube, s)
        builder.ensure_token_secret()
        # The nonce makes a fresh Job name for a forced build, or when a failed Job of the same
        # name exists: such a Job's failure was counted already and is never adopted again.
        job = builder.start(plan.sha, plan.attempt, self.lease.identity[-5:], fresh=self.force)
        result = builder.wait(job)
        if not result.succeeded:
            if result.log_tail:
                log.error("build pod log (last lines):\n%s", result.log_tail.rstrip())
            return f"build Job {job} failed: {result.reason}"
        self.record(lambda current: current.built(plan.sha))
        log.info("built %s:%s and %s:%s", s.image, plan.sha, s.image, s.latest_tag)
        return None

    def deploy(self, plan: Plan, deploy: Deploy) -> Outcome:
        """helm upgrade --install, rolled back by helm on failure; then the record."""
        from .errors import DeployError

        s = self.settings
        self.lease.check()
        try:
            revision = deploy.run()
        except DeployError as e:
            return self.fail(plan, "DeployFailed", f"{e} (rolled back)")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        message = (
            f"deployed {plan.sha[:7]} as {s.deploy_namespace}/{s.release} revision {revision} "
            f"(image {s.image}:{plan.sha})"
        )
        try:
            self.record(lambda current: current.deployed(plan.sha, now, revision))
        except KubernetesError as e:
            # helm's work stands; the next run redeploys the same commit (a no-change upgrade)
            # and records it then.
            raise KubernetesError(f"{message}, but the state was not recorded: {e}") from e
        self.events.emit(self.uid, "Deployed", message)
        return Outcome(message)

    def record(self, change: Callable[[State], State]) -> State:
        """Write ``change`` to the state (with the head's ETag), unless the Lease was lost."""
        self.lease.check()
        written = self.store.update(lambda current: change(current).seen(self.head, self.etag))
        self.uid = written.uid
        return written

    def fail(self, plan: Plan, reason: str, error: str) -> Outcome:
        """Count the failed attempt in the state and tell the user how many are left."""
        n = self.settings.max_attempts
        used = self.record(lambda current: current.failed(plan.sha, error)).attempts_for(plan.sha)
        then = f"{n - used} attempt(s) left" if used < n else "giving up on it"
        message = f"attempt {used}/{n} on {plan.sha[:7]} failed: {error}; {then}"
        self.events.emit(self.uid, reason, message, warning=True)
        return Outcome(message, CycleFailed.exit_code)
