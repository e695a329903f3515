"""The image build: one Kaniko batch/v1 Job per commit attempt, watched to its end."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch

from . import kube
from .errors import KubernetesError, shorten
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


def job_name(release: str, sha: str, attempt: int, forced: str = "") -> str:
    """A name per (release, commit, attempt): a crashed run's Job is found again by name.

    A forced build adds ``forced`` (a per-run nonce), so it builds anew instead of adopting
    the finished Job of an earlier build of the same commit.
    """
    suffix = f"-build-{sha[:12]}-{attempt}" + (f"-{forced}" if forced else "")
    return release[: 63 - len(suffix)].rstrip("-") + suffix


def kaniko_args(settings: Settings, sha: str) -> list[str]:
    """Kaniko's arguments: clone the exact commit, push ``<sha>`` and ``<branch>-latest``."""
    s = settings
    args = [
        f"--context=git://{s.github_host}/{s.repo}.git#refs/heads/{s.branch}#{sha}",
        f"--dockerfile={s.dockerfile}",
        f"--destination={s.image}:{sha}",
        f"--destination={s.image}:{s.latest_tag}",
        # The digest lands in the pod's termination message, visible in its status.
        "--digest-file=/dev/termination-log",
        "--push-retry=2",
    ]
    if s.build_context != ".":
        args.insert(1, f"--context-sub-path={s.build_context}")
    return args


def build_job(settings: Settings, sha: str, attempt: int, forced: str = "") -> dict[str, Any]:
    """The build Job manifest. The token only ever appears as a Secret reference."""
    s = settings
    labels = {
        **MANAGED_BY,
        "app.kubernetes.io/component": "build",
        RELEASE_LABEL: s.release,
        COMMIT_LABEL: sha,
    }
    container: dict[str, Any] = {
        "name": "kaniko",
        "image": s.kaniko_image,
        "args": kaniko_args(s, sha),
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
    }
    volumes: list[dict[str, Any]] = []
    token_secret = s.token_secret_name
    if token_secret:
        container["env"] = [
            {
                "name": "GIT_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": token_secret, "key": TOKEN_KEY}},
            }
        ]
    if s.registry_secret:
        volumes.append(
            {
                "name": "registry-auth",
                "secret": {
                    "secretName": s.registry_secret,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
        container["volumeMounts"] = [{"name": "registry-auth", "mountPath": "/kaniko/.docker"}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # Kaniko needs no Kubernetes API access.
        "automountServiceAccountToken": False,
        "containers": [container],
    }
    if volumes:
        pod_spec["volumes"] = volumes
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(s.release, sha, attempt, forced),
            "namespace": s.cicd_namespace,
            "labels": labels,
            "annotations": {"ci-runner.io/branch": s.branch, "ci-runner.io/attempt": str(attempt)},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": s.build_timeout,
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def token_secret(settings: Settings) -> dict[str, Any]:
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

    job: str
    succeeded: bool
    reason: str = ""
    """Why it failed: the Job's condition reason and message, the container's message."""
    log_tail: str = ""
    """The last lines of the build pod's log, when it failed."""


def finished(job: client.V1Job) -> tuple[bool, str] | None:
    """(succeeded, reason) once the Job has a Complete or Failed condition, else None."""
    for condition in (job.status and job.status.conditions) or []:
        if condition.status != "True":
            continue
        if condition.type == "Complete":
            return True, ""
        if condition.type == "Failed":
            detail = ": ".join(p for p in (condition.reason, condition.message) if p)
            return False, detail or "Failed"
    return None


class Builder:
    """Creates (or adopts) the build Job of a commit and waits for its end."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._settings = settings
        self._ns = settings.cicd_namespace
        self._timeout = settings.api_timeout

    def ensure_token_secret(self) -> None:
        """Create or refresh the token Secret the build Job references (when we own it)."""
        s = self._settings
        if not s.git_token or s.git_token_secret:
            return
        body = token_secret(s)
        name = s.token_secret_name
        doing = f"writing Secret {self._ns}/{name}"
        try:
            with kube.translated(doing):
                self._core.create_namespaced_secret(self._ns, body, _request_timeout=self._timeout)
        except KubernetesError as e:
            if e.status != 409:
                raise
            with kube.translated(doing):
                self._core.replace_namespaced_secret(
                    name, self._ns, body, _request_timeout=self._timeout
                )

    def start(self, sha: str, attempt: int, forced: str = "") -> str:
        """Create the Job for this attempt, or adopt the one a crashed run left; its name."""
        body = build_job(self._settings, sha, attempt, forced)
        name: str = body["metadata"]["name"]
        try:
            with kube.translated(f"creating build Job {self._ns}/{name}"):
                self._batch.create_namespaced_job(self._ns, body, _request_timeout=self._timeout)
            log.info("started build Job %s/%s for %s", self._ns, name, sha[:7])
        except KubernetesError as e:
            if e.status != 409:
                raise
            log.info("adopting build Job %s/%s left by an earlier run", self._ns, name)
        return name

    def wait(self, name: str) -> BuildResult:
        """Watch the Job until it is Complete or Failed."""
        deadline = time.monotonic() + self._settings.build_timeout + GRACE_SECONDS
        while True:
            job = self._read(name)
            verdict = finished(job)
            if verdict is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    verdict = (False, f"no verdict within {self._settings.build_timeout}s")
                else:
                    verdict = self._watch(name, job.metadata.resource_version, remaining)
            if verdict is not None:
                succeeded, reason = verdict
                if succeeded:
                    return BuildResult(name, True)
                message, tail = self._pod_report(name)
                reason = "; ".join(p for p in (reason, message) if p)
                return BuildResult(name, False, reason, tail)

    def _read(self, name: str) -> client.V1Job:
        with kube.translated(f"reading build Job {self._ns}/{name}"):
            job: client.V1Job = self._batch.read_namespaced_job(
                name, self._ns, _request_timeout=self._timeout
            )
            return job

    def _watch(self, name: str, since: str, remaining: float) -> tuple[bool, str] | None:
        """Watch from ``since`` until a verdict or the watch ends (the caller re-reads)."""
        watcher = watch.Watch()
        seconds = max(1, int(min(remaining, WATCH_SECONDS)))
        try:
            with kube.translated(f"watching build Job {self._ns}/{name}"):
                for event in watcher.stream(
                    self._batch.list_namespaced_job,
                    self._ns,
                    field_selector=f"metadata.name={name}",
                    resource_version=since,
                    timeout_seconds=seconds,
                    _request_timeout=seconds + self._timeout,
                ):
                    if event["type"] in {"ADDED", "MODIFIED"}:
                        verdict = finished(event["object"])
                        if verdict is not None:
                            return verdict
                    elif event["type"] == "DELETED":
                        return False, "the build Job was deleted"
        except KubernetesError as e:
            if e.status != 410:  # our resourceVersion is too old: re-read and watch again
                raise
        finally:
            watcher.stop()
        return None

    def _pod_report(self, name: str) -> tuple[str, str]:
        """The build pod's termination message and log tail (best effort: for the user's eyes)."""
        try:
            pods = self._pods(name)
            if not pods:
                return "", ""
            pod = max(pods, key=lambda p: p.metadata.creation_timestamp or 0)
            message = ""
            for status in (pod.status and pod.status.container_statuses) or []:
                terminated = status.state and status.state.terminated
                if terminated and terminated.message:
                    message = shorten(terminated.message, 200)
            with kube.translated(f"reading the log of pod {self._ns}/{pod.metadata.name}"):
                tail = self._core.read_namespaced_pod_log(
                    pod.metadata.name,
                    self._ns,
                    tail_lines=LOG_LINES,
                    _request_timeout=self._timeout,
                )
            return message, str(tail or "")
        except KubernetesError as e:
            log.warning("could not read the build pod of %s: %s", name, e)
            return "", ""

    def _pods(self, name: str) -> list[client.V1Pod]:
        # batch.kubernetes.io/job-name since Kubernetes 1.27; job-name on older clusters.
        for label in ("batch.kubernetes.io/job-name", "job-name"):
            with kube.translated(f"listing the pods of build Job {self._ns}/{name}"):
                pods = self._core.list_namespaced_pod(
                    self._ns, label_selector=f"{label}={name}", _request_timeout=self._timeout
                ).items
            if pods:
                return list(pods)
        return []
