"""Waiting for a build Job to end, and seeing early when its pod never will start.

A Job whose pod cannot pull its image, lacks a Secret, cannot be scheduled or cannot even be
created (a Pod Security rejection) would otherwise sit until BUILD_TIMEOUT in silence. Between
watches of the Job we look at its pod and at the Warning Events about both; ``stuck`` decides,
as a pure function, whether that is an end.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .. import stopping
from ..config import Settings
from ..errors import Gone, KubernetesError, shorten
from .client import EVENTS, JOBS, PODS, Kube, Obj

log = logging.getLogger(__name__)

# Beyond activeDeadlineSeconds (which Kubernetes enforces), how long we wait for the verdict.
GRACE_SECONDS = 120
# How often the pod is looked at between Job events, and how often a progress line is logged.
LOOK_SECONDS = 10
PROGRESS_SECONDS = 30
LOG_LINES = 30
# Waiting reasons no retry can fix (pkg/kubelet/images/types.go): the attempt ends at once.
HOPELESS = {"InvalidImageName", "ErrImageNeverPull"}
# Waiting reasons that can resolve by themselves: a registry blip (the kubelet retries a pull
# with back-off), a Secret or ConfigMap created a moment later. Given BUILD_START_GRACE.
TRANSIENT = {
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
}
# Warning Events of a build that has not started yet: the Job controller could not create the
# pod (a ResourceQuota, until other pods end; an admission refusal, for good), the kubelet
# could not mount a volume (a Secret not there yet).
START_EVENTS = {"FailedCreate", "FailedMount"}
# What in a FailedCreate message never resolves by itself: Pod Security, or another admission
# refusal that is not a quota.
_QUOTA = "exceeded quota"
# The cluster autoscaler's Normal Event on a pending pod it is adding a node for.
SCALE_UP = "TriggeredScaleUp"


@dataclass(frozen=True)
class Trouble:
    """Why the build pod is not running yet: a reason, its message, and whether it can pass."""

    reason: str
    message: str
    hopeless: bool = False


@dataclass(frozen=True)
class Verdict:
    """How a build Job ends as the watch sees it: done, or failed and why."""

    succeeded: bool
    reason: str = ""


DELETED = Verdict(False, "the build Job was deleted")


@dataclass(frozen=True)
class BuildResult:
    """How a build Job ended."""

    succeeded: bool
    reason: str = ""
    """Why it failed: the Job's condition, the pod's trouble, the container's message."""
    log_tail: str = ""
    """The last lines of the build pod's log, when it failed."""
    abandoned: bool = False
    """The runner gave up on it (it never started, or gave no verdict in time): delete it."""
    fetch_exit: int | None = None
    """The exit code of the init container that fetches the context, when that is what
    failed: 1 the commit's archive, 2 the settings, 3 GitHub (the runner's own codes)."""


def finished(job: Obj) -> Verdict | None:
    """The Job's verdict once it has a Complete or Failed condition, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return Verdict(True)
        if condition.get("type") == "Failed":
            detail = ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
            return Verdict(False, detail or "Failed")
    return None


# What the kubelet says of a main container while the init containers run
# (pkg/kubelet/kuberuntime: the pod's containers wait with reason PodInitializing).
INITIALIZING = "PodInitializing"


def _statuses(pod: Obj | None) -> list[Obj]:
    """The init containers' statuses, then the main containers': the order they run in."""
    status = (pod or {}).get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def pod_state(pod: Obj | None) -> str:
    """One phrase for the progress line: the phase, an init container still at work (the
    context being fetched), and any waiting reason."""
    if pod is None:
        return "no pod yet"
    status = pod.get("status") or {}
    notes = []
    for container in status.get("initContainerStatuses") or []:
        state = container.get("state") or {}
        reason = (state.get("waiting") or {}).get("reason")
        if "running" in state:
            notes.append(f"{container.get('name')} running")
        elif reason and reason != INITIALIZING:
            notes.append(f"{container.get('name')}: {reason}")
    for container in status.get("containerStatuses") or []:
        reason = ((container.get("state") or {}).get("waiting") or {}).get("reason")
        if reason and (reason != INITIALIZING or not notes):
            notes.append(reason)
    said = ", ".join(notes)
    return f"pod {status.get('phase') or 'Pending'}" + (f" ({said})" if said else "")


def fetch_failure(pod: Obj | None) -> tuple[int, str] | None:
    """(exit code, termination message) of an init container that ended in failure: the
    fetch of the build context (``ci-runner fetch-context``: 1 the commit's archive was
    refused, 2 its settings, 3 GitHub failed); None when none did."""
    for container in ((pod or {}).get("status") or {}).get("initContainerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        code = terminated.get("exitCode")
        if isinstance(code, int) and code != 0:
            return code, shorten(str(terminated.get("message") or terminated.get("reason") or ""))
    return None


def troubles(pod: Obj | None, events: list[Obj]) -> list[Trouble]:
    """What keeps a build from starting now. ``events`` are the Warning Events about the Job
    and its pod; they stay after what they report has passed, so they count only while the pod
    does not exist (FailedCreate) or has not started (FailedMount)."""
    found: list[Trouble] = []
    status = (pod or {}).get("status") or {}
    started = pod is not None and status.get("phase") not in (None, "Pending")
    for event in events:
        reason = str(event.get("reason") or "")
        message = shorten(str(event.get("message") or ""), 300)
        if reason == "FailedCreate" and pod is None:
            found.append(Trouble(reason, message, hopeless=_QUOTA not in message))
        elif reason == "FailedMount" and pod is not None and not started:
            found.append(Trouble(reason, message))
    for container in _statuses(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason in HOPELESS or reason in TRANSIENT:
            message = shorten(str(waiting.get("message") or ""), 300)
            found.append(Trouble(reason, message, hopeless=reason in HOPELESS))
    if unschedulable(pod):
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                message = shorten(str(condition.get("message") or ""), 300)
                found.append(Trouble("Unschedulable", message))
    return found


def stuck(pod: Obj | None, events: list[Obj], troubled_for: float, grace: float) -> Verdict | None:
    """A failed verdict when the build can never start (why: its reason), or None while it may.
    ``events`` are the Warning Events about the Job and its pod; ``troubled_for`` how long the
    build has been kept from starting by troubles that can pass, ``grace`` how long they may."""
    found = troubles(pod, events)
    for trouble in found:
        if trouble.hopeless:
            return Verdict(False, f"{trouble.reason}: {trouble.message}{_fix(trouble.message)}")
    if found and troubled_for > grace:
        first = found[0]
        if first.reason == "Unschedulable":
            return Verdict(
                False, f"the build pod cannot be scheduled for {int(grace)}s: {first.message}"
            )
        return Verdict(
            False, f"{first.reason}: {first.message} (not resolved within {int(grace)}s)"
        )
    return None


def _fix(message: str) -> str:
    """What to do about a refusal whose cause we can name."""
    if "violates PodSecurity" in message:  # the admission plugin's wording (pod-security-admission)
        return (
            " (Kaniko runs as root: label the CICD namespace "
            "pod-security.kubernetes.io/enforce=baseline)"
        )
    return ""


def unschedulable(pod: Obj | None) -> bool:
    """Whether the scheduler says the pod does not fit anywhere (yet)."""
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    return any(
        c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        for c in conditions
    )


class Watcher:
    """Waits for one build Job's verdict, looking at its pod along the way."""

    def __init__(self, kube: Kube, settings: Settings, name: str) -> None:
        self._kube = kube
        self._ns = settings.cicd_namespace
        self._name = name
        self._timeout = settings.build_timeout
        # Troubles that can pass get BUILD_START_GRACE, but never most of the build's time.
        self._grace = min(settings.build_start_grace, settings.build_timeout // 4)
        self._troubled_since: float | None = None
        self._told: set[str] = set()
        """The troubles already logged as progress: one line each, no spam."""
        self._scaling_up = False

    def wait(self) -> BuildResult:
        """Watch the Job until it is Complete or Failed, or its pod can never start."""
        started = time.monotonic()
        deadline = started + self._timeout + GRACE_SECONDS
        next_progress = started + PROGRESS_SECONDS
        while True:
            stopping.check()
            job = self._kube.read(JOBS, self._ns, self._name)
            verdict = finished(job) if job is not None else DELETED
            abandoned = False
            if verdict is None:
                assert job is not None
                verdict, state = self._look(job)
                abandoned = verdict is not None
                now = time.monotonic()
                if verdict is None and now >= next_progress:
                    log.info("build Job %s: %s, %ds elapsed", self._name, state, now - started)
                    next_progress += PROGRESS_SECONDS
                if verdict is None and now >= deadline:
                    verdict = Verdict(False, f"no verdict within {self._timeout}s")
                    abandoned = True
                if verdict is None:
                    seconds = min(deadline - now, LOOK_SECONDS)
                    verdict = self._watch(job["metadata"]["resourceVersion"], seconds)
            if verdict is not None:
                if verdict.succeeded:
                    return BuildResult(True)
                message, tail, fetch = self._pod_report()
                reason = "; ".join(p for p in (verdict.reason, message) if p)
                return BuildResult(False, reason, tail, abandoned, fetch)

    def _look(self, job: Obj) -> tuple[Verdict | None, str]:
        """(a failed verdict when the pod can never start, else None; the progress phrase)."""
        pod = self._pod()
        names = {self._name, *([pod["metadata"]["name"]] if pod else [])}
        warnings = self._kube.query(EVENTS, self._ns, field_selector="type=Warning")
        about = [e for e in warnings if (e.get("involvedObject") or {}).get("name") in names]
        found = troubles(pod, about)
        now = time.monotonic()
        if not found:
            self._troubled_since = None
        elif self._troubled_since is None:
            self._troubled_since = now
        grace = self._grace
        if pod is not None and unschedulable(pod) and self._scale_up(pod):
            grace *= 2  # the autoscaler is adding a node: give it the time that takes
        for trouble in found:
            if trouble.reason not in self._told and not trouble.hopeless:
                self._told.add(trouble.reason)
                log.info(
                    "build Job %s: %s: %s (this can resolve by itself; waiting up to %ds)",
                    self._name,
                    trouble.reason,
                    trouble.message,
                    grace,
                )
        waited = now - self._troubled_since if self._troubled_since is not None else 0.0
        return stuck(pod, about, waited, grace), pod_state(pod)

    def _scale_up(self, pod: Obj) -> bool:
        """Whether the cluster autoscaler said it adds a node for ``pod`` (logged once)."""
        if not self._scaling_up:
            name = pod["metadata"]["name"]
            selector = f"involvedObject.name={name},reason={SCALE_UP}"
            if self._kube.query(EVENTS, self._ns, field_selector=selector):
                self._scaling_up = True
                log.info("build Job %s: the cluster autoscaler is adding a node", self._name)
        return self._scaling_up

    def _watch(self, since: str, seconds: float) -> Verdict | None:
        """Watch from ``since`` until a verdict or the window ends (the caller looks again)."""
        try:
            for kind, job in self._kube.watch(JOBS, self._ns, self._name, since, int(seconds) or 1):
                if kind in {"ADDED", "MODIFIED"}:
                    verdict = finished(job)
                    if verdict is not None:
                        return verdict
                elif kind == "DELETED":
                    return DELETED
        except KubernetesError as e:
            # A watch ends on many things that pass: its resourceVersion too old (410), a
            # connection the API server or a proxy closed, a 5xx or 429. The caller reads the
            # Job again and watches anew; if the API is really gone, that read says so (exit 3).
            transient = (
                isinstance(e, Gone) or e.status is None or e.status in (429, *range(500, 600))
            )
            if not transient:
                raise  # 401, 403, 404: no second watch would fare better
            log.debug("watch of build Job %s ended (%s); reading it again", self._name, e)
        return None

    def _pod_report(self) -> tuple[str, str, int | None]:
        """The build pod's termination message, log tail and, when the context fetch failed,
        its exit code (best effort: for the user's eyes, and for whose fault it was)."""
        try:
            pod = self._pod()
            if pod is None:
                return "", "", None
            fetch = fetch_failure(pod)
            if fetch is not None:
                # Kaniko never started: the init container's one line says it all.
                code, said = fetch
                return f"fetching the build context failed (exit code {code}): {said}", "", code
            message = ""
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated") or {}
                if terminated.get("message"):
                    message = shorten(terminated["message"], 200)
            states = [s.get("state") or {} for s in pod["status"].get("containerStatuses") or []]
            if not any("running" in state or "terminated" in state for state in states):
                return message, "", None  # it never started: there is no log
            # Kaniko's log: with no container named, the API server reads the pod's only main
            # container, init containers aside (pkg/registry/core/pod/strategy.go LogLocation).
            return message, self._kube.log(self._ns, pod["metadata"]["name"], LOG_LINES), None
        except KubernetesError as e:
            log.warning("could not read the build pod of %s: %s", self._name, e)
            return "", "", None

    def _pod(self) -> Obj | None:
        """The Job's newest pod, if any."""
        pods = job_pods(self._kube, self._ns, self._name)
        return pods[-1] if pods else None


def job_pods(kube: Kube, namespace: str, job: str) -> list[Obj]:
    """The pods of Job ``job``, oldest first."""
    # batch.kubernetes.io/job-name since Kubernetes 1.27; job-name on older clusters.
    for label in ("batch.kubernetes.io/job-name", "job-name"):
        pods = kube.query(PODS, namespace, label_selector=f"{label}={job}")
        if pods:
            return sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp") or ""))
    return []
