"""The runner's state, kept in a ConfigMap in the CICD namespace.

``data`` holds what was deployed (for people and ``ci-runner status``); annotations hold the
bookkeeping of the commit under way (attempts, last error, whether its image is built) and the
GitHub ETag. Every write sends the resourceVersion that was read: a Conflict means someone else
wrote, so the caller re-reads and re-decides instead of overwriting.

The ConfigMap can be edited by hand, so every field is checked when read: a field that is not
what the runner writes is logged and treated as absent, never trusted.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..config import Settings, StateSettings
from ..errors import Conflict, KubernetesError, shorten
from .client import CONFIGMAPS, Kube, Obj

log = logging.getLogger(__name__)

ANNOTATION = "ci-runner.io/"
PENDING_SHA = ANNOTATION + "pending-sha"
ATTEMPTS = ANNOTATION + "attempts"
LAST_ERROR = ANNOTATION + "last-error"
BUILT_SHA = ANNOTATION + "built-sha"
BUILT_DIGEST = ANNOTATION + "built-digest"
ETAG = ANNOTATION + "github-etag"
ETAG_SHA = ANNOTATION + "github-etag-sha"
PINNED_SHA = ANNOTATION + "pinned-sha"
PINNED_AT = ANNOTATION + "pinned-at"
CHECKS = ANNOTATION + "checks"
OUR_LABELS = ("app.kubernetes.io/managed-by", "ci-runner.io/release")
MAX_ERROR = 1000
WRITE_TRIES = 3
_SHA = re.compile(r"^[0-9a-f]{40}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Deployed:
    """One deploy, as the history keeps it."""

    sha: str
    at: str
    revision: int | None
    digest: str | None
    """The digest the release was pinned to; None when it was deployed by tag."""
    how: str = "build"
    """``build`` (a new head), ``forced`` (``run --force``), ``rollback``."""

    def as_json(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "at": self.at,
            "revision": self.revision,
            "digest": self.digest,
            "how": self.how,
        }


@dataclass(frozen=True)
class Checks:
    """The REQUIRE_CHECKS answers kept while the runner waits for the checks of ``sha``: for
    the check runs and the commit statuses each, GitHub's ETag (to ask with: a 304 is free)
    and the (name, state) pairs it answered (what a 304 means)."""

    sha: str
    runs_etag: str | None
    runs: tuple[tuple[str, str], ...]
    statuses_etag: str | None
    statuses: tuple[tuple[str, str], ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "runs": {"etag": self.runs_etag, "states": [list(p) for p in self.runs]},
            "statuses": {"etag": self.statuses_etag, "states": [list(p) for p in self.statuses]},
        }


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
    built_digest: str | None = None
    """The digest Kaniko pushed for ``built_sha``; None when it could not be read."""
    deployed_digest: str | None = None
    """The digest the release was pinned to; None when it was deployed by tag."""
    skipped_sha: str | None = None
    """The last head that was not built ([skip ci], or no change under WATCH_PATHS)."""
    etag: str | None = None
    """GitHub's ETag for the branch head; a 304 for it means the head is still ``etag_sha``."""
    etag_sha: str | None = None
    resource_version: str | None = None
    uid: str | None = None
    """The ConfigMap's uid: Events name it, so ``kubectl describe configmap`` lists them."""
    others_annotations: tuple[tuple[str, str], ...] = ()
    """Annotations another writer put on the ConfigMap (a person's note, a policy tool's
    stamp): written back as they were read, since a write replaces the whole object."""
    others_labels: tuple[tuple[str, str], ...] = ()
    history: tuple[Deployed, ...] = ()
    """The last deploys, newest first (HISTORY_LIMIT of them)."""
    pinned_sha: str | None = None
    """While set, runs deploy nothing: ``ci-runner pin`` set it, ``ci-runner unpin`` clears it."""
    pinned_at: str | None = None
    skipped_reason: str | None = None
    """Why ``skipped_sha`` was not built."""
    checks: Checks | None = None
    """While a head waits for REQUIRE_CHECKS: GitHub's last answers for it."""

    def attempts_for(self, sha: str) -> int:
        """Attempts already spent on ``sha``."""
        return self.attempts if self.pending_sha == sha else 0

    def with_etag(self, sha: str, etag: str | None) -> State:
        """Remember GitHub's ETag for head ``sha``, so the next run can ask conditionally."""
        return replace(self, etag=etag, etag_sha=sha) if etag else self

    def built(self, sha: str, digest: str | None = None) -> State:
        """The image of ``sha`` was pushed (as ``digest``, if known): a retry of its deploy
        need not rebuild it, and deploys the same digest."""
        return replace(
            self,
            pending_sha=sha,
            attempts=self.attempts_for(sha),
            built_sha=sha,
            built_digest=digest,
        )

    def pinned(self, at: str) -> State:
        """Pin the release at what is deployed now."""
        return replace(self, pinned_sha=self.deployed_sha, pinned_at=at)

    def unpinned(self) -> State:
        return replace(self, pinned_sha=None, pinned_at=None)

    def skipped(self, sha: str, reason: str | None = None) -> State:
        """``sha`` is not to be built or deployed (for ``reason``); later runs on it do
        nothing."""
        return replace(self, skipped_sha=sha, skipped_reason=reason, checks=None)

    def waiting(self, checks: Checks) -> State:
        """The head waits for its required checks; GitHub's answers are kept to ask again."""
        return replace(self, checks=checks)

    def attempt_failed(self, sha: str, error: str) -> State:
        """One more attempt on ``sha`` failed with ``error``."""
        return replace(
            self,
            pending_sha=sha,
            attempts=self.attempts_for(sha) + 1,
            last_error=shorten(error, MAX_ERROR),
            built_sha=self.built_sha if self.built_sha == sha else None,
            built_digest=self.built_digest if self.built_sha == sha else None,
        )

    def deployed(
        self,
        sha: str,
        at: str,
        revision: int | None,
        digest: str | None = None,
        keep: int = 10,
        how: str = "build",
    ) -> State:
        """``sha`` is deployed as helm ``revision`` (pinned to ``digest``, if any); the attempts
        and the built image's record are cleared, and the deploy heads the history (``keep``
        long)."""
        return replace(
            self,
            history=(Deployed(sha, at, revision, digest, how), *self.history)[:keep],
            deployed_sha=sha,
            deployed_at=at,
            revision=revision,
            deployed_digest=digest,
            built_digest=None,
            pending_sha=None,
            attempts=0,
            last_error=None,
            built_sha=None,
            checks=None,
        )


def _checked(where: str, value: str | None, valid: Callable[[str], bool]) -> str | None:
    if not value:
        return None
    if valid(value):
        return value
    log.warning("state field %s is not what the runner writes (%r); ignoring it", where, value)
    return None


def _sha(where: str, value: str | None) -> str | None:
    return _checked(where, value, lambda v: bool(_SHA.match(v)))


def _digest(where: str, value: str | None) -> str | None:
    return _checked(where, value, lambda v: bool(_DIGEST.match(v)))


def _count(where: str, value: str | None) -> int | None:
    checked = _checked(where, value, lambda v: v.isascii() and v.isdigit())
    return int(checked) if checked is not None else None


def _history(text: str | None) -> tuple[Deployed, ...]:
    """The history field, each entry checked as the other fields are; what is not what the
    runner writes is dropped with a warning, not trusted."""
    if not text:
        return ()
    try:
        entries = json.loads(text)
    except ValueError:
        entries = None
    if not isinstance(entries, list):
        log.warning("state field history is not what the runner writes; ignoring it")
        return ()
    kept = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        sha = _sha("history.sha", entry.get("sha"))
        revision = entry.get("revision")
        if sha is None or not (revision is None or isinstance(revision, int)):
            continue
        digest = _digest("history.digest", entry.get("digest"))
        how = str(entry.get("how") or "build")
        kept.append(Deployed(sha, str(entry.get("at") or ""), revision, digest, how))
    return tuple(kept)


def _reported(entry: object) -> tuple[str | None, tuple[tuple[str, str], ...]] | None:
    if not isinstance(entry, dict):
        return None
    etag, states = entry.get("etag"), entry.get("states")
    if not (etag is None or isinstance(etag, str)) or not isinstance(states, list):
        return None
    pairs = []
    for pair in states:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
        ):
            return None
        pairs.append((pair[0], pair[1]))
    return etag, tuple(pairs)


def _checks(text: str | None) -> Checks | None:
    """The checks annotation; what the runner did not write is ignored (asked afresh)."""
    if not text:
        return None
    try:
        entry = json.loads(text)
    except ValueError:
        entry = None
    if isinstance(entry, dict):
        sha = _sha(CHECKS + ".sha", entry.get("sha"))
        runs, statuses = _reported(entry.get("runs")), _reported(entry.get("statuses"))
        if sha and runs and statuses:
            return Checks(sha, runs[0], runs[1], statuses[0], statuses[1])
    log.warning("state field %s is not what the runner writes; ignoring it", CHECKS)
    return None


def from_configmap(cm: Obj | None) -> State:
    """Read a State from a ConfigMap (None when it does not exist)."""
    if cm is None:
        return State()
    data = cm.get("data") or {}
    notes = cm["metadata"].get("annotations") or {}
    etag_sha = _sha(ETAG_SHA, notes.get(ETAG_SHA))
    return State(
        deployed_sha=_sha("lastDeployedSha", data.get("lastDeployedSha")),
        deployed_at=data.get("lastDeployedAt") or None,
        revision=_count("lastRevision", data.get("lastRevision")),
        pending_sha=_sha(PENDING_SHA, notes.get(PENDING_SHA)),
        attempts=_count(ATTEMPTS, notes.get(ATTEMPTS)) or 0,
        last_error=notes.get(LAST_ERROR) or None,
        built_sha=_sha(BUILT_SHA, notes.get(BUILT_SHA)),
        built_digest=_digest(BUILT_DIGEST, notes.get(BUILT_DIGEST)),
        deployed_digest=_digest("lastDeployedDigest", data.get("lastDeployedDigest")),
        skipped_sha=_sha("lastSkippedSha", data.get("lastSkippedSha")),
        skipped_reason=data.get("lastSkippedReason") or None,
        checks=_checks(notes.get(CHECKS)),
        history=_history(data.get("history")),
        pinned_sha=_sha(PINNED_SHA, notes.get(PINNED_SHA)),
        pinned_at=notes.get(PINNED_AT) or None,
        # An ETag is only worth sending with the SHA it stands for.
        etag=(notes.get(ETAG) or None) if etag_sha else None,
        etag_sha=etag_sha,
        resource_version=cm["metadata"].get("resourceVersion"),
        uid=cm["metadata"].get("uid"),
        others_annotations=tuple(
            sorted((k, v) for k, v in notes.items() if not k.startswith(ANNOTATION))
        ),
        others_labels=tuple(
            sorted(
                (k, v)
                for k, v in (cm["metadata"].get("labels") or {}).items()
                if k not in OUR_LABELS
            )
        ),
    )


def to_configmap(state: State, settings: Settings) -> Obj:
    """The ConfigMap body for ``state`` (no token or secret ever goes here)."""
    annotations = {
        PENDING_SHA: state.pending_sha,
        ATTEMPTS: str(state.attempts) if state.pending_sha else None,
        LAST_ERROR: state.last_error,
        BUILT_SHA: state.built_sha,
        BUILT_DIGEST: state.built_digest if state.built_sha else None,
        ETAG: state.etag,
        ETAG_SHA: state.etag_sha if state.etag else None,
        PINNED_SHA: state.pinned_sha,
        PINNED_AT: state.pinned_at if state.pinned_sha else None,
        CHECKS: json.dumps(state.checks.as_json(), separators=(",", ":")) if state.checks else None,
    }
    data = {
        "repo": settings.repo,
        "branch": settings.branch,
        "release": settings.release,
        "deployNamespace": settings.deploy_namespace,
        "image": settings.image,
        "maxRetries": str(settings.max_attempts),
        "lastDeployedSha": state.deployed_sha or "",
        "lastDeployedAt": state.deployed_at or "",
        "lastRevision": str(state.revision) if state.revision is not None else "",
        "lastDeployedDigest": state.deployed_digest or "",
        "lastSkippedSha": state.skipped_sha or "",
        "lastSkippedReason": (state.skipped_reason or "") if state.skipped_sha else "",
        "history": json.dumps([d.as_json() for d in state.history], separators=(",", ":")),
    }
    metadata: Obj = {
        "name": settings.state_configmap,
        "namespace": settings.cicd_namespace,
        "labels": {
            **dict(state.others_labels),
            "app.kubernetes.io/managed-by": "ci-runner",
            "ci-runner.io/release": settings.release,
        },
        "annotations": {
            **dict(state.others_annotations),
            **{k: v for k, v in annotations.items() if v is not None},
        },
    }
    if state.resource_version:
        metadata["resourceVersion"] = state.resource_version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def read_configmap(kube: Kube, where: StateSettings) -> Obj | None:
    """The state ConfigMap, or None when there is none yet."""
    return kube.read(CONFIGMAPS, where.cicd_namespace, where.state_configmap)


def next_action(phase: str, state: State, max_retries: int | None) -> str:
    """What the next run will do, or what a person has to, in the words of ``status``."""
    if phase == "pinned":
        return "nothing while pinned: `ci-runner unpin` lets the next run deploy the branch head"
    if phase == "given-up":
        assert state.pending_sha is not None
        return (
            f"nothing for {state.pending_sha[:7]} (given up): push a new commit, or "
            "`ci-runner run --force`"
        )
    if phase == "failing":
        assert state.pending_sha is not None
        return f"retry {state.pending_sha[:7]} (attempt {state.attempts + 1} of {max_retries})"
    if state.checks is not None and state.checks.sha != state.deployed_sha:
        return f"build {state.checks.sha[:7]} once its required checks pass (REQUIRE_CHECKS)"
    if phase == "deployed":
        return "deploy the branch head when it moves on (`ci-runner rollback` to go back)"
    return "build and deploy the branch head"


def status_report(cm: Obj | None, where: StateSettings) -> dict[str, Any]:
    """What ``ci-runner status`` shows: the state as one flat JSON object, with its phase."""
    state = from_configmap(cm)
    data = (cm.get("data") if cm is not None else None) or {}
    max_retries = _count("maxRetries", data.get("maxRetries"))
    if cm is None:
        phase = "none"
    elif state.pinned_sha:
        phase = "pinned"
    elif state.pending_sha and max_retries and state.attempts >= max_retries:
        phase = "given-up"
    elif state.pending_sha and state.attempts:
        phase = "failing"
    elif state.deployed_sha:
        phase = "deployed"
    else:
        phase = "none"
    return {
        "phase": phase,
        "next": next_action(phase, state, max_retries),
        "repo": data.get("repo") or None,
        "branch": data.get("branch") or None,
        "release": where.release,
        "namespace": where.cicd_namespace,
        "deployNamespace": data.get("deployNamespace") or None,
        "lastDeployedSha": state.deployed_sha,
        "lastDeployedAt": state.deployed_at,
        "revision": state.revision,
        "lastDeployedDigest": state.deployed_digest,
        "lastSkippedSha": state.skipped_sha,
        "lastSkippedReason": state.skipped_reason,
        "waitingForChecks": state.checks.sha if state.checks else None,
        "pendingSha": state.pending_sha,
        "attempts": state.attempts,
        "maxRetries": max_retries,
        "lastError": state.last_error,
        "pinnedSha": state.pinned_sha,
        "pinnedAt": state.pinned_at,
    }


class StateStore:
    """Reads and writes one release's state ConfigMap."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings

    def read(self) -> State:
        """The current state (an empty State when the ConfigMap does not exist yet)."""
        return from_configmap(read_configmap(self._kube, self._settings))

    def write(self, state: State) -> State:
        """Write ``state`` if nobody wrote since it was read; Conflict otherwise."""
        return from_configmap(self._kube.save(CONFIGMAPS, to_configmap(state, self._settings)))

    def update(self, change: Callable[[State], State]) -> State:
        """Apply the pure ``change`` to a freshly read state and write it, re-reading on 409."""
        for _ in range(WRITE_TRIES):
            try:
                return self.write(change(self.read()))
            except Conflict:
                continue
        raise KubernetesError(
            f"ConfigMap {self._settings.state_configmap} kept changing under us "
            f"({WRITE_TRIES} conflicting writes); giving up this run"
        )
