"""The runner's state, kept in a ConfigMap in the CICD namespace.

``data`` holds what was deployed (for people and ``ci-runner status``); annotations hold the
bookkeeping of the commit under way (attempts, last error, whether its image is built) and the
GitHub ETag. Every write sends the resourceVersion that was read: a 409 means someone else wrote,
so the caller re-reads and re-decides instead of overwriting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kubernetes import client

from . import kube
from .errors import KubernetesError, shorten
from .settings import Settings

ANNOTATION = "ci-runner.io/"
PENDING_SHA = ANNOTATION + "pending-sha"
ATTEMPTS = ANNOTATION + "attempts"
LAST_ERROR = ANNOTATION + "last-error"
BUILT_SHA = ANNOTATION + "built-sha"
ETAG = ANNOTATION + "github-etag"
ETAG_SHA = ANNOTATION + "github-etag-sha"
MAX_ERROR = 500
WRITE_TRIES = 3


@dataclass(frozen=True)
class State:
    """What the ConfigMap says. ``resource_version`` None means it does not exist yet."""

    deployed_sha: str | None = None
    deployed_at: str | None = None
    revision: int | None = None
    pending_sha: str | None = None
    attempts: int = 0
    last_error: str | None = None
    built_sha: str | None = None
    etag: str | None = None
    """GitHub's ETag for the branch head; a 304 for it means the head is still ``etag_sha``."""
    etag_sha: str | None = None
    resource_version: str | None = None

    def attempts_for(self, sha: str) -> int:
        """Attempts already spent on ``sha``."""
        return self.attempts if self.pending_sha == sha else 0

    def seen(self, sha: str, etag: str | None) -> State:
        """Remember GitHub's ETag for head ``sha``, so the next run can ask conditionally."""
        return replace(self, etag=etag, etag_sha=sha) if etag else self

    def built(self, sha: str) -> State:
        """The image of ``sha`` was pushed: a retry of its deploy need not rebuild it."""
        return replace(self, pending_sha=sha, attempts=self.attempts_for(sha), built_sha=sha)

    def failed(self, sha: str, error: str) -> State:
        """One more attempt on ``sha`` failed with ``error``."""
        return replace(
            self,
            pending_sha=sha,
            attempts=self.attempts_for(sha) + 1,
            last_error=shorten(error, MAX_ERROR),
            built_sha=self.built_sha if self.built_sha == sha else None,
        )

    def deployed(self, sha: str, at: str, revision: int | None) -> State:
        """``sha`` is deployed as helm ``revision``; the attempts are cleared."""
        return replace(
            self,
            deployed_sha=sha,
            deployed_at=at,
            revision=revision,
            pending_sha=None,
            attempts=0,
            last_error=None,
            built_sha=None,
        )


def from_configmap(cm: client.V1ConfigMap | None) -> State:
    """Read a State from a ConfigMap (None when it does not exist)."""
    if cm is None:
        return State()
    data = cm.data or {}
    notes = cm.metadata.annotations or {}
    return State(
        deployed_sha=data.get("lastDeployedSha") or None,
        deployed_at=data.get("lastDeployedAt") or None,
        revision=_int(data.get("lastRevision")),
        pending_sha=notes.get(PENDING_SHA) or None,
        attempts=_int(notes.get(ATTEMPTS)) or 0,
        last_error=notes.get(LAST_ERROR) or None,
        built_sha=notes.get(BUILT_SHA) or None,
        etag=notes.get(ETAG) or None,
        etag_sha=notes.get(ETAG_SHA) or None,
        resource_version=cm.metadata.resource_version,
    )


def to_configmap(state: State, settings: Settings) -> dict[str, Any]:
    """The ConfigMap body for ``state`` (no token or secret ever goes here)."""
    annotations = {
        PENDING_SHA: state.pending_sha,
        ATTEMPTS: str(state.attempts) if state.pending_sha else None,
        LAST_ERROR: state.last_error,
        BUILT_SHA: state.built_sha,
        ETAG: state.etag,
        ETAG_SHA: state.etag_sha if state.etag else None,
    }
    data = {
        "repo": settings.repo,
        "branch": settings.branch,
        "release": settings.release,
        "deployNamespace": settings.deploy_namespace,
        "image": settings.image,
        "lastDeployedSha": state.deployed_sha or "",
        "lastDeployedAt": state.deployed_at or "",
        "lastRevision": str(state.revision) if state.revision is not None else "",
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": settings.state_configmap,
            "namespace": settings.cicd_namespace,
            "resourceVersion": state.resource_version,
            "labels": {
                "app.kubernetes.io/managed-by": "ci-runner",
                "ci-runner.io/release": settings.release,
            },
            "annotations": {k: v for k, v in annotations.items() if v is not None},
        },
        "data": data,
    }


def status_report(cm: client.V1ConfigMap | None, settings: Settings) -> dict[str, Any]:
    """What ``ci-runner status`` shows: the state as one flat JSON object."""
    state = from_configmap(cm)
    data = (cm.data if cm is not None else None) or {}
    return {
        "repo": data.get("repo") or settings.repo or None,
        "branch": data.get("branch") or settings.branch,
        "release": settings.release,
        "lastDeployedSha": state.deployed_sha,
        "lastDeployedAt": state.deployed_at,
        "revision": state.revision,
        "pendingSha": state.pending_sha,
        "attempts": state.attempts,
        "maxRetries": settings.max_retries,
        "lastError": state.last_error,
    }


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


class StateStore:
    """Reads and writes the state ConfigMap."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self._core = client.CoreV1Api(api)
        self._settings = settings
        self._timeout = settings.api_timeout

    def read(self) -> State:
        """The current state (an empty State when the ConfigMap does not exist yet)."""
        return from_configmap(self.read_configmap())

    def read_configmap(self) -> client.V1ConfigMap | None:
        s = self._settings
        try:
            with kube.translated(f"reading ConfigMap {s.cicd_namespace}/{s.state_configmap}"):
                cm: client.V1ConfigMap = self._core.read_namespaced_config_map(
                    s.state_configmap, s.cicd_namespace, _request_timeout=self._timeout
                )
                return cm
        except KubernetesError as e:
            if e.status == 404:
                return None
            raise

    def write(self, state: State) -> State:
        """Write ``state`` if nobody wrote since it was read; 409 raises ConflictError."""
        s = self._settings
        body = to_configmap(state, s)
        doing = f"writing ConfigMap {s.cicd_namespace}/{s.state_configmap}"
        try:
            with kube.translated(doing):
                if state.resource_version is None:
                    written = self._core.create_namespaced_config_map(
                        s.cicd_namespace, body, _request_timeout=self._timeout
                    )
                else:
                    written = self._core.replace_namespaced_config_map(
                        s.state_configmap, s.cicd_namespace, body, _request_timeout=self._timeout
                    )
        except KubernetesError as e:
            if e.status == 409:
                raise ConflictError(doing) from e
            raise
        return from_configmap(written)

    def update(self, change: Callable[[State], State]) -> State:
        """Apply the pure ``change`` to a freshly read state and write it, re-reading on 409."""
        for _ in range(WRITE_TRIES):
            current = self.read()
            try:
                return self.write(change(current))
            except ConflictError:
                continue
        raise KubernetesError(
            f"ConfigMap {self._settings.state_configmap} kept changing under us "
            f"({WRITE_TRIES} conflicting writes); giving up this run"
        )


class ConflictError(KubernetesError):
    """Someone else wrote the ConfigMap since we read it."""

    def __init__(self, doing: str) -> None:
        super().__init__(f"conflict (409) while {doing}: it changed since it was read", 409)
