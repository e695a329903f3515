"""Test controls: how Jobs behave, injected faults, and the request log."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from .jobs import OUTCOMES, JobController, JobRule, Outcome


class JobControls:
    """How batch/v1 Jobs run. Rules are checked newest first; without a match a Job succeeds."""

    def __init__(self, jobs: JobController) -> None:
        self._jobs = jobs

    def behave(
        self,
        outcome: Outcome = "succeed",
        *,
        namespace: str | None = None,
        name: str | None = None,
        labels: dict[str, str] | None = None,
        log: str = "",
        termination_message: str | None = None,
        reason: str | None = None,
        message: str | None = None,
        exit_code: int = 1,
    ) -> None:
        """Make Jobs created from now on that match (name is an fnmatch glob) end this way.

        ``init-fail``: the Pod's first init container exits ``exit_code`` with
        ``termination_message``, so the main containers never start, the Pod fails and so does
        the Job (as ``fail``, after its init containers completed, is the main one failing).

        ``hold`` leaves the Job active with a Running, ready Pod until ``release``. Three
        outcomes stop a Job until ``release``: ``image-pull-error`` (its Pod Pending, containers
        waiting in ErrImagePull then ImagePullBackOff), ``unschedulable`` (its Pod Pending,
        PodScheduled False), ``pod-forbidden`` (no Pod, a FailedCreate Event on the Job);
        ``message`` is then what the registry, scheduler or admission said (each has a
        realistic default). ``reason``: the Job's failure reason when it fails.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown Job outcome {outcome!r}")
        rule = JobRule(
            outcome, namespace, name, labels, log, termination_message, reason, message, exit_code
        )
        with self._jobs.store.cond:
            self._jobs.rules.append(rule)

    def release(self, namespace: str, name: str, outcome: Outcome = "succeed") -> None:
        """End a Job that has not finished: held, or stopped before its Pod ran.

        ``succeed``: its Pod (created now if it had none) Succeeded, the Job Complete.
        ``fail``: a held Job's Pod Failed, the Job Failed (the rule's reason, default
        BackoffLimitExceeded); a Job whose Pod never ran Failed with DeadlineExceeded (as its
        activeDeadlineSeconds would end it), its Pending Pod deleted.
        """
        if outcome not in ("succeed", "fail"):
            raise ValueError(f"a released Job must succeed or fail, not {outcome!r}")
        self._jobs.release(namespace, name, outcome)


@dataclass
class Fault:
    """An injected answer for the next ``times`` matching requests."""

    method: str
    path: re.Pattern[str]
    status: int | Literal["hang"]
    times: int
    body: dict[str, Any] | None = None


@dataclass
class Faults:
    """Faults to inject, first added first matched."""

    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        method: str,
        path_regex: str,
        status: int | Literal["hang"],
        times: int = 1,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` requests of this method (or "*") whose path matches
        (``re.search``, query excluded) with a Status of this code, or hang them until stop()."""
        if status != "hang" and not isinstance(status, int):
            raise ValueError("status must be an HTTP code or 'hang'")
        with self._lock:
            self._faults.append(Fault(method.upper(), re.compile(path_regex), status, times, body))

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any (using up one of its times)."""
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method.upper()) and fault.path.search(path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Forget every fault not yet used."""
        with self._lock:
            self._faults.clear()


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator answered (or, with status 0, held without answering)."""

    method: str
    path: str
    query: dict[str, str]
    api_group: str
    """"" for the core group and for non-resource paths."""
    api_version: str
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    verb: str
    """get, list, watch, create, update, patch, delete, deletecollection; for non-resource paths
    the HTTP method in lower case."""
    status: int
    user_agent: str
    content_type: str
    impersonating: str = ""
    """The Impersonate-User header (helm --kube-as-user), "" when none."""


class RequestLog:
    """A thread-safe list of RequestRecord."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        """Log one request."""
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        """A copy of the log so far."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget every logged request."""
        with self._lock:
            self._records.clear()
