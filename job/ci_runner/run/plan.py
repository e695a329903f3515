"""What one cycle should do: pure functions over data, no I/O.

``decide`` is a function of (head commit, state, settings); ``skip_marker`` and ``unwatched``
tell whether a new head need not be built at all, from its message and (with WATCH_PATHS) the
files GitHub's compare lists as changed since the deployed commit."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..github.answers import Changes
from ..kube.state import Deployed, State


class Action(enum.Enum):
    NOTHING = "nothing"
    """The head is deployed already."""
    GIVEN_UP = "given-up"
    """The head used up its attempts; a new commit or --force starts again."""
    BUILD_AND_DEPLOY = "build-and-deploy"
    DEPLOY = "deploy"
    """The head's image was built by an earlier attempt whose deploy failed."""


@dataclass(frozen=True)
class Plan:
    action: Action
    sha: str
    attempt: int
    """The number of the attempt this run would make (1 for a fresh commit)."""
    reason: str
    digest: str | None = None
    """For a deploy without rebuild: the digest the earlier build pushed, if it was read."""
    redeploy: bool = False
    """A forced run on the deployed commit: it deployed before, so a failure now is not the
    commit's but the configuration's (settings, Secrets, the cluster): nothing is counted."""

    @property
    def acts(self) -> bool:
        """True when the plan builds or deploys."""
        return self.action in {Action.BUILD_AND_DEPLOY, Action.DEPLOY}


def pinned(state: State) -> str | None:
    """What a run says while the release is pinned (it deploys nothing), or None."""
    if state.pinned_sha is None:
        return None
    since = f" since {state.pinned_at}" if state.pinned_at else ""
    return (
        f"pinned at {state.pinned_sha[:7]}{since}: nothing is built or deployed; "
        "`ci-runner unpin` lets the next run deploy the branch head again"
    )


def rollback_target(state: State, to: str | None) -> Deployed:
    """The recorded deploy ``ci-runner rollback`` goes back to: the one of commit ``to`` (its
    full SHA or a prefix of at least 7), else the one before the current. ValueError (a
    configuration error: nothing is changed) when there is none."""
    if to is None:
        if len(state.history) < 2:
            raise ValueError(
                "no earlier deploy is recorded to roll back to (see `ci-runner history`)"
            )
        return state.history[1]
    if len(to) < 7:
        raise ValueError(f"--to {to!r}: give at least 7 characters of the commit's SHA")
    found = [d for d in state.history if d.sha.startswith(to.lower())]
    if not found:
        raise ValueError(f"--to {to}: no such deploy in the history (see `ci-runner history`)")
    return found[0]


def decide(head: str, state: State, max_attempts: int, force: bool = False) -> Plan:
    """Decide what to do with ``head`` given ``state``."""
    used = state.attempts_for(head)
    attempt = used + 1
    if not force and head == state.deployed_sha:
        return Plan(Action.NOTHING, head, attempt, f"{head[:7]} is already deployed")
    if not force and head == state.skipped_sha:
        reason = f"{head[:7]} was skipped (not to be built); the next commit is considered"
        return Plan(Action.NOTHING, head, attempt, reason)
    if not force and used >= max_attempts:
        return Plan(
            Action.GIVEN_UP,
            head,
            attempt,
            f"gave up on {head[:7]} after {used} failed attempt(s) (MAX_RETRIES={max_attempts}); "
            f"last error: {state.last_error or 'unknown'}",
        )
    forced = " (forced)" if force else ""
    redeploy = force and head == state.deployed_sha
    if state.built_sha == head:
        reason = f"deploy {head[:7]}, its image is already built{forced}"
        return Plan(Action.DEPLOY, head, attempt, reason, state.built_digest, redeploy)
    reason = f"build and deploy {head[:7]}{forced}"
    return Plan(Action.BUILD_AND_DEPLOY, head, attempt, reason, redeploy=redeploy)


# -- heads that need not be built ------------------------------------------------------------------

# The markers GitHub Actions honours in a commit message ([skip ci], [ci skip], [no ci]), and
# one for a commit that CI may test but that should not be deployed.
SKIP_MARKERS = ("[skip ci]", "[ci skip]", "[no ci]", "[skip deploy]")
# "The list of changed files ... includes up to 300 changed files for the entire comparison"
# (docs.github.com/rest/commits/commits#compare-two-commits), with no sign that it was cut: a
# listing of 300 is taken as cut.
COMPARE_FILE_LIMIT = 300


def skip_marker(message: str | None) -> str | None:
    """The skip marker ``message`` contains (in any letter case), or None."""
    lowered = (message or "").lower()
    return next((marker for marker in SKIP_MARKERS if marker in lowered), None)


def glob(pattern: str) -> re.Pattern[str]:
    """A WATCH_PATHS pattern as a regular expression over a whole path, case-sensitive:
    ``*`` and ``?`` stay within one directory, a ``**`` segment spans any number of them
    (``src/**`` matches ``src/app.py`` and ``src/a/b.py``; ``**/Dockerfile`` matches
    ``Dockerfile`` too)."""
    parts = pattern.split("/")
    regex = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            regex.append(".*" if last else "(?:[^/]+/)*")
            continue
        chars = ("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
        regex.append("".join(chars) + ("" if last else "/"))
    return re.compile("".join(regex))


def watched(patterns: Iterable[str], paths: Iterable[str]) -> list[str]:
    """The ``paths`` that one of ``patterns`` matches."""
    regexes = [glob(p) for p in patterns]
    return [path for path in paths if any(r.fullmatch(path) for r in regexes)]


@dataclass(frozen=True)
class Unwatched:
    """Nothing a deploy depends on changed since ``base``: the head need not be built."""

    base: str
    """The deployed commit the head was compared with."""

    @property
    def reason(self) -> str:
        """Why the head is skipped, as the run says it."""
        return f"no file under WATCH_PATHS or CHART_PATH changed since {self.base[:7]}"


def unwatched(patterns: Iterable[str], chart_path: str, changes: Changes) -> Unwatched | None:
    """GitHub listed every change since the deployed commit and none is under ``patterns`` or
    the chart: the head need not be built. None (build) on any doubt: a head that is not
    simply ahead (a rewritten branch), or a listing that may have been cut."""
    if changes.status != "ahead" or changes.listed >= COMPARE_FILE_LIMIT:
        return None
    if watched([*patterns, f"{chart_path}/**"], changes.paths):
        return None
    return Unwatched(changes.base)


# -- the fleet: which apps get a Job ---------------------------------------------------------------


@dataclass(frozen=True)
class FleetCall:
    """Whether one app of the fleet gets a Job this run (``job``), and why, in its words."""

    job: bool
    reason: str


def fleet_call(head: str, state: State, max_attempts: int, active: str | None) -> FleetCall:
    """What the fleet does for one app whose branch head is ``head``: a Job exactly when the
    app's own run would build or deploy (``decide``: a new head, a skipped commit's successor,
    a failed attempt to retry, a built image to deploy), and never while ``active`` (the name
    of a Job of that app still running) or while the release is pinned.

    A release a killed run left ``pending-*`` needs nothing of its own here: the state is
    written only after helm succeeded, so that head still differs from the deployed one and
    its Job recovers the release (as the app's own run would)."""
    if active is not None:
        return FleetCall(False, f"Job {active} is still running")
    held = pinned(state)
    if held is not None:
        return FleetCall(False, held)
    plan = decide(head, state, max_attempts)
    if not plan.acts:
        return FleetCall(False, plan.reason)
    used = state.attempts_for(head)
    if used:
        return FleetCall(True, f"retry {head[:7]} (attempt {used + 1} of {max_attempts})")
    if plan.action is Action.DEPLOY:
        return FleetCall(True, f"deploy {head[:7]}, its image is already built")
    if state.skipped_sha is not None and state.deployed_sha != head:
        after = f" after skipped {state.skipped_sha[:7]}"
    else:
        after = ""
    deployed = state.deployed_sha[:7] if state.deployed_sha else "nothing"
    return FleetCall(True, f"new head {head[:7]}{after} (deployed: {deployed})")


# -- REQUIRE_CHECKS: a new head is built only once the checks it names passed ----------------------

# As GitHub's required status checks read them (docs.github.com, "Troubleshooting required
# status checks"): a check and a status of the same name are both required, and a skipped check
# counts as passed; a check run concluding "neutral" passes there too. The other conclusions
# (failure, cancelled, timed_out, action_required, stale) fail. A commit status
# (docs.github.com/rest/commits/statuses) is error, failure, pending or success. A check run not
# completed yet is given here as "pending".
PASSING = frozenset({"success", "neutral", "skipped"})
PENDING = "pending"
ALL_CHECKS = "all"


class Verdict(enum.Enum):
    PASS = "pass"
    WAIT = "wait"
    """Some required check has not finished (or not reported): nothing is done this run."""
    FAIL = "fail"
    """A required check failed: the commit is skipped, as a ``[skip ci]`` one is."""


@dataclass(frozen=True)
class Gate:
    verdict: Verdict
    reason: str


def _named(names: Iterable[str]) -> str:
    shown = sorted(names)
    listed = ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
    return listed


def gate(
    required: tuple[str, ...],
    runs: Iterable[tuple[str, str]],
    statuses: Iterable[tuple[str, str]],
    own_context: str,
) -> Gate:
    """Whether the head may be built, from what GitHub reported on it: ``runs`` (check run
    name to its conclusion, or "pending") and ``statuses`` (context to state). ``required``
    names the checks (a name may be a check run's or a status context's; when both report
    under it, both must pass), or is ``("all",)``: every check run and status reported.
    The runner's own status context never counts: it says "pending" while the runner builds.
    A failure decides at once (a check re-run to green does not undo it: push again, or
    ``run --force``); otherwise any check not passed yet, or not reported yet, waits."""
    reports: dict[str, list[str]] = {}
    for name, state in [*runs, *((n, s) for n, s in statuses if n != own_context)]:
        reports.setdefault(name, []).append(state)
    wanted = sorted(reports) if required == (ALL_CHECKS,) else list(required)
    failed = {
        name: next(s for s in reports[name] if s not in PASSING and s != PENDING)
        for name in wanted
        if any(s not in PASSING and s != PENDING for s in reports.get(name, []))
    }
    if failed:
        said = ", ".join(f"{name} ({state})" for name, state in sorted(failed.items()))
        return Gate(Verdict.FAIL, f"required check(s) failed: {said}")
    if not wanted:  # REQUIRE_CHECKS=all, and nothing has reported yet
        return Gate(Verdict.WAIT, "waiting for checks: none has reported yet (REQUIRE_CHECKS=all)")
    missing = [name for name in wanted if name not in reports]
    running = [name for name in wanted if name in reports and PENDING in reports[name]]
    if missing or running:
        parts = [f"{_named(running)} to finish"] if running else []
        parts += [f"{_named(missing)} to report"] if missing else []
        return Gate(Verdict.WAIT, f"waiting for {' and '.join(parts)} (REQUIRE_CHECKS)")
    return Gate(Verdict.PASS, f"required check(s) passed: {_named(wanted)}")


# -- drift: a release changed by hand ----------------------------------------------------------


def drift(
    state: State, where: str, revision: int | None, release_status: str | None, names_sha: bool
) -> str | None:
    """What ``status`` says when the release ``where`` is not what the runner last deployed
    (helm reports ``revision`` now, None when not installed; ``names_sha``: its values still
    name the deployed commit, so the image is the runner's), with the command that resolves
    it; None when it is as recorded, or nothing is recorded yet."""
    sha = state.deployed_sha
    if sha is None or state.revision is None:
        return None
    short = sha[:7]
    back = (
        f"`ci-runner rollback --to {short}` deploys the recorded {short} again (no build, and "
        "pins it), or `ci-runner run --force` builds and deploys the branch head"
    )
    if revision is None:
        return f"release {where} is not installed, though the runner deployed {short}: {back}"
    if revision == state.revision and release_status == "deployed":
        return None
    image = "" if names_sha else f"; its values no longer name {short} (another image)"
    return (
        f"release {where} is at helm revision {revision} ({release_status}), the runner's "
        f"last deploy was revision {state.revision} ({short}): changed by hand (helm upgrade, "
        f"rollback or uninstall){image}; {back}"
    )
