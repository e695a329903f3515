"""The image build: one Kaniko batch/v1 Job per commit attempt, watched to its end."""

from __future__ import annotations

import copy
import logging
import re
import time
from dataclasses import dataclass

from .errors import Conflict, Gone, KubernetesError, shorten
from .kube import JOBS, PODS, SECRETS, Kube, Obj
from .settings import Settings

log = logging.getLogger(__name__)

MANAGED_BY = {"app.kubernetes.io/managed-by": "ci-runner"}
RELEASE_LABEL = "ci-runner.io/release"
COMMIT_LABEL = "ci-runner.io/commit"
TOKEN_KEY = "token"
# Finished build Jobs stay a day for their logs, then Kubernetes removes them.
TTL_SECONDS = 86_400
# Beyond activeDeadlineSeconds (which Kubernetes enforces), how long we wait for the verdict.
GRACE_SECONDS = 120
WATCH_SECONDS = 60
LOG_LINES = 30
TERMINATION_LOG = "/dev/termination-log"
# What Kaniko writes to --digest-file: the pushed image's digest (pkg/executor/push.go).
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def job_name(release: str, sha: str, attempt: int, nonce: str = "") -> str:
    """A name per (release, commit, attempt): a crashed run's Job is found again by name.

    A ``nonce`` (a per-run string) makes the name new, so a forced build or a retry whose
    earlier Job failed builds anew instead of adopting that finished Job.
    """
    suffix = f"-build-{sha[:12]}-{attempt}" + (f"-{nonce}" if nonce else "")
    return release[: 63 - len(suffix)].rstrip("-") + suffix


def kaniko_args(settings: Settings, sha: str) -> list[str]:
    """Kaniko's arguments: clone the exact commit, push ``<sha>`` and ``<branch>-latest``, write
    the pushed digest where the runner reads it; then the user's build arguments and flags.

    Flags as the maintained fork documents them (osscontainertools/kaniko README, "Additional
    Flags"; cmd/executor/cmd/root.go). Each is one ``--name=value`` word: no shell is involved,
    so a value with spaces needs no quoting.
    """
    s = settings
    args = [
        f"--context=git://{s.github_host}/{s.repo}.git#refs/heads/{s.branch}#{sha}",
        f"--dockerfile={s.dockerfile}",
        f"--destination={s.image}:{sha}",
        f"--destination={s.image}:{s.latest_tag}",
        # The digest lands in the pod's termination message, visible in its status.
        f"--digest-file={TERMINATION_LOG}",
        "--push-retry=2",
    ]
    if s.build_context != ".":
        args.insert(1, f"--context-sub-path={s.build_context}")
    build_args = (("CI_RUNNER_SHA", sha), ("CI_RUNNER_BRANCH", s.branch), *s.build_args)
    args += [f"--build-arg={key}={value}" for key, value in build_args]
    if s.build_cache:
        # --cache-ttl is a Go duration (pflag DurationVar); the fork's default is two weeks.
        repo = s.cache_repository(s.image)
        args += ["--cache=true", f"--cache-repo={repo}", f"--cache-ttl={s.build_cache_ttl}"]
    if s.registry_insecure:
        # --insecure: push over plain HTTP; --skip-tls-verify: push without checking TLS.
        args += ["--insecure", "--skip-tls-verify"]
    # Last, so that a user's flag wins over a default of ours (pflag keeps the last value);
    # the flags the runner depends on are refused when the settings are loaded.
    return [*args, *s.kaniko_args]


def pod_spec(settings: Settings, sha: str) -> Obj:
    """The Kaniko pod. The token only ever appears as a Secret reference. BUILD_POD's fields
    (resources for the Kaniko container, scheduling and identity for the pod) replace ours."""
    s = settings
    chosen = copy.deepcopy(dict(s.build_pod or {}))
    container: Obj = {
        "name": "kaniko",
        "image": s.kaniko_image,
        "args": kaniko_args(s, sha),
        "resources": chosen.pop("resources", None)
        or {"requests": {"cpu": "500m", "memory": "1Gi"}},
        # On success the message is the digest Kaniko wrote; on a failure that wrote nothing
        # there, the kubelet puts the log's tail there instead.
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    spec: Obj = {
        "restartPolicy": "Never",
        # Kaniko needs no Kubernetes API access.
        "automountServiceAccountToken": False,
        "containers": [container],
        **chosen,
    }
    if s.token_secret_name:
        secret = {"secretKeyRef": {"name": s.token_secret_name, "key": TOKEN_KEY}}
        container["env"] = [{"name": "GIT_TOKEN", "valueFrom": secret}]
    if s.registry_secret:
        items = [{"key": ".dockerconfigjson", "path": "config.json"}]
        spec["volumes"] = [
            {"name": "registry-auth", "secret": {"secretName": s.registry_secret, "items": items}}
        ]
        container["volumeMounts"] = [{"name": "registry-auth", "mountPath": "/kaniko/.docker"}]
    return spec


def build_job(settings: Settings, sha: str, attempt: int, nonce: str = "") -> Obj:
    """The build Job manifest: one pod, never retried, removed a day after it ends."""
    s = settings
    labels = {
        **MANAGED_BY,
        "app.kubernetes.io/component": "build",
        RELEASE_LABEL: s.release,
        COMMIT_LABEL: sha,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(s.release, sha, attempt, nonce),
            "namespace": s.cicd_namespace,
            "labels": labels,
            "annotations": {"ci-runner.io/branch": s.branch, "ci-runner.io/attempt": str(attempt)},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": s.build_timeout,
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(s, sha)},
        },
    }


def token_secret(settings: Settings) -> Obj:
    """The Secret the runner keeps for Kaniko when given GIT_TOKEN but no GIT_TOKEN_SECRET."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": settings.token_secret_name,
            "namespace": settings.cicd_namespace,
            "labels": {**MANAGED_BY, RELEASE_LABEL: settings.release},
        },
        "stringData": {TOKEN_KEY: settings.git_token},
    }


@dataclass(frozen=True)
class BuildResult:
    """How a build Job ended."""

    succeeded: bool
    reason: str = ""
    """Why it failed: the Job's condition reason and message, the container's message."""
    log_tail: str = ""
    """The last lines of the build pod's log, when it failed."""


def finished(job: Obj) -> tuple[bool, str] | None:
    """(succeeded, reason) once the Job has a Complete or Failed condition, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return True, ""
        if condition.get("type") == "Failed":
            detail = ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
            return False, detail or "Failed"
    return None


def pushed_digest(pod: Obj) -> str | None:
    """The digest Kaniko pushed, from the build pod's termination message (``--digest-file``
    is the termination log); None unless the Kaniko container ended well and left one."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        if status.get("name") == "kaniko" and terminated.get("exitCode") == 0:
            message = str(terminated.get("message") or "").strip()
            return message if _DIGEST.match(message) else None
    return None


class Builder:
    """Creates (or adopts) the build Job of a commit and waits for its end."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self._ns = settings.cicd_namespace

    def ensure_token_secret(self) -> None:
        """Create or refresh the token Secret the build Job references (when we own it)."""
        s = self._settings
        if not s.git_token or s.git_token_secret:
            return
        body = token_secret(s)
        current = self._kube.read(SECRETS, self._ns, body["metadata"]["name"])
        if current is not None:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self._kube.save(SECRETS, body)

    def start(self, sha: str, attempt: int, nonce: str, fresh: bool) -> str:
        """Create the Job for this attempt, or adopt the one a crashed run left; its name.

        A Job of the same name is adopted while it runs or when it succeeded; one that failed
        was counted already, so a retry builds anew under a ``nonce`` name. ``fresh`` (a forced
        run) always builds anew.
        """
        body = build_job(self._settings, sha, attempt, nonce if fresh else "")
        name: str = body["metadata"]["name"]
        try:
            self._kube.create(JOBS, body)
        except Conflict:
            existing = self._kube.read(JOBS, self._ns, name)
            verdict = finished(existing) if existing is not None else None
            if fresh or verdict is None or verdict[0]:
                log.info("adopting build Job %s/%s left by an earlier run", self._ns, name)
                return name
            return self.start(sha, attempt, nonce, fresh=True)
        log.info("started build Job %s/%s for %s", self._ns, name, sha[:7])
        return name

    def wait(self, name: str) -> BuildResult:
        """Watch the Job until it is Complete or Failed."""
        deadline = time.monotonic() + self._settings.build_timeout + GRACE_SECONDS
        while True:
            job = self._kube.read(JOBS, self._ns, name)
            verdict = finished(job) if job is not None else (False, "the build Job was deleted")
            if verdict is None:
                assert job is not None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    verdict = (False, f"no verdict within {self._settings.build_timeout}s")
                else:
                    verdict = self._watch(name, job["metadata"]["resourceVersion"], remaining)
            if verdict is not None:
                succeeded, reason = verdict
                if succeeded:
                    return BuildResult(True)
                message, tail = self._pod_report(name)
                reason = "; ".join(p for p in (reason, message) if p)
                return BuildResult(False, reason, tail)

    def _watch(self, name: str, since: str, remaining: float) -> tuple[bool, str] | None:
        """Watch from ``since`` until a verdict or the watch ends (the caller re-reads)."""
        seconds = max(1, int(min(remaining, WATCH_SECONDS)))
        try:
            for kind, job in self._kube.watch(JOBS, self._ns, name, since, seconds):
                if kind in {"ADDED", "MODIFIED"}:
                    verdict = finished(job)
                    if verdict is not None:
                        return verdict
                elif kind == "DELETED":
                    return False, "the build Job was deleted"
        except Gone:  # our resourceVersion is too old: the caller re-reads and watches again
            pass
        return None

    def _pod_report(self, name: str) -> tuple[str, str]:
        """The build pod's termination message and log tail (best effort: for the user's eyes)."""
        try:
            pods = self._pods(name)
            if not pods:
                return "", ""
            pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")
            message = ""
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated") or {}
                if terminated.get("message"):
                    message = shorten(terminated["message"], 200)
            tail = self._kube.log(self._ns, pod["metadata"]["name"], LOG_LINES)
            return message, tail
        except KubernetesError as e:
            log.warning("could not read the build pod of %s: %s", name, e)
            return "", ""

    def _pods(self, name: str) -> list[Obj]:
        # batch.kubernetes.io/job-name since Kubernetes 1.27; job-name on older clusters.
        for label in ("batch.kubernetes.io/job-name", "job-name"):
            pods = self._kube.select(PODS, self._ns, f"{label}={name}")
            if pods:
                return pods
        return []
