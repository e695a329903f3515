"""One check-build-deploy cycle: the one place that joins GitHub, state, build and helm."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from kubernetes import client

from . import build, helm, kube
from .archive import extract_chart
from .errors import CycleFailed
from .events import Recorder
from .github import GitHub
from .lock import Lease
from .plan import Action, Plan, decide
from .settings import Settings
from .state import State, StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How the cycle ended: what the CLI prints and the exit code."""

    message: str
    exit_code: int = 0


def run(settings: Settings, *, dry_run: bool = False, force: bool = False) -> Outcome:
    """Run one cycle. Raises CiRunnerError subclasses for configuration and service failures."""
    s = settings
    executable = None if dry_run else helm.require_helm()
    api = kube.connect(s.verify_ssl)
    with api, GitHub(s) as github:
        store = StateStore(api, s)
        state = store.read()
        head, etag = _head(github, s, state)
        plan = decide(head, state, s.max_retries, force)
        log.info("%s/%s head is %s: %s", s.repo, s.branch, head[:7], plan.reason)
        where = f"{s.repo}@{head[:7]}"
        if dry_run:
            return Outcome(_describe(s, state, plan))
        if not plan.acts:
            return Outcome(plan.reason)
        assert executable is not None
        with tempfile.TemporaryDirectory(prefix="ci-runner-") as tmp:
            # Fetch and check the chart first: a commit without a usable chart must not cost a
            # build, and a bad archive must change nothing in the cluster, not even the Lease.
            chart_dir = extract_chart(github.tarball(head), s.chart_path, Path(tmp), where)
            values = helm.chart_values(s, chart_dir, head)
            lease = Lease(api, s)
            holder = lease.acquire()
            if holder is not None:
                return Outcome(
                    f"another run ({holder.identity}) holds {lease.where}; leaving {where} to it"
                )
            with lease.renewing():
                deploy = helm.Deploy(s, chart_dir, values, executable)
                return _act(api, s, store, lease, head, etag, force, deploy)


def _head(github: GitHub, s: Settings, state: State) -> tuple[str, str | None]:
    """The branch head, asked with the stored ETag so an unchanged head costs no rate limit."""
    etag = state.etag if state.etag_sha else None
    answer = github.head(s.branch, etag)
    if answer.sha is None:  # 304: unchanged since the ETag we stored with etag_sha
        assert state.etag_sha is not None
        return state.etag_sha, etag
    return answer.sha, answer.etag


def _act(
    api: client.ApiClient,
    s: Settings,
    store: StateStore,
    lease: Lease,
    head: str,
    etag: str | None,
    force: bool,
    deploy: helm.Deploy,
) -> Outcome:
    # Another run may have finished between our first read and taking the Lease: re-decide.
    state = store.read()
    plan = decide(head, state, s.max_retries, force)
    if not plan.acts:
        return Outcome(plan.reason)
    events = Recorder(api, s)

    def record(change: Callable[[State], State]) -> State:
        lease.check()
        return store.update(lambda current: change(current).seen(head, etag))

    if plan.action is Action.BUILD_AND_DEPLOY:
        builder = build.Builder(api, s)
        builder.ensure_token_secret()
        job = builder.start(head, plan.attempt, forced=lease.identity[-5:] if force else "")
        result = builder.wait(job)
        if not result.succeeded:
            if result.log_tail:
                log.error("build pod log (last lines):\n%s", result.log_tail.rstrip())
            error = f"build Job {job} failed: {result.reason}"
            return _failed(record, events, s, plan, "BuildFailed", error)
        record(lambda current: current.built(head))
        log.info("built %s:%s and %s:%s", s.image, head, s.image, s.latest_tag)

    lease.check()
    try:
        revision = deploy.run()
    except helm.DeployError as e:
        return _failed(record, events, s, plan, "DeployFailed", f"{e} (rolled back)")

    now = datetime.now(UTC).isoformat(timespec="seconds")
    record(lambda current: current.deployed(head, now, revision))
    message = (
        f"deployed {head[:7]} as {s.deploy_namespace}/{s.release} revision {revision} "
        f"(image {s.image}:{head})"
    )
    events.emit("Deployed", message)
    return Outcome(message)


def _failed(
    record: Callable[[Callable[[State], State]], State],
    events: Recorder,
    s: Settings,
    plan: Plan,
    reason: str,
    error: str,
) -> Outcome:
    """Count the failed attempt in the state and tell the user how many are left."""
    state = record(lambda current: current.failed(plan.sha, error))
    used = state.attempts_for(plan.sha)
    then = f"{s.max_retries - used} attempt(s) left" if used < s.max_retries else "giving up on it"
    message = f"attempt {used}/{s.max_retries} on {plan.sha[:7]} failed: {error}; {then}"
    events.emit(reason, message, warning=True)
    return Outcome(message, CycleFailed.exit_code)


def _describe(s: Settings, state: State, plan: Plan) -> str:
    """The --dry-run report: the commit, the Job and the helm command, nothing written."""
    lines = [
        f"commit:  {plan.sha} ({s.repo} branch {s.branch})",
        f"state:   deployed {state.deployed_sha or 'nothing yet'}; "
        f"{state.attempts_for(plan.sha)}/{s.max_retries} attempts on this commit",
        f"plan:    {plan.reason}",
    ]
    if plan.action is Action.BUILD_AND_DEPLOY:
        job = yaml.safe_dump(build.build_job(s, plan.sha, plan.attempt), sort_keys=False)
        lines.append("job:\n" + "\n".join("  " + line for line in job.splitlines()))
    if plan.acts:
        executable = shutil.which("helm")
        helm4 = executable is not None and helm.helm_major(executable) >= 4
        chart = f"<{s.chart_path} of {plan.sha[:7]}>"
        lines.append("helm:    " + helm.command_line(s, chart, plan.sha, helm4))
    lines.append("dry run: nothing was written")
    return "\n".join(lines)
