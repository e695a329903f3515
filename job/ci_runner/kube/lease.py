"""A Lease in the CICD namespace, so two runs never build or deploy the same release at once.

The CronJob's ``concurrencyPolicy: Forbid`` covers its own schedule, but not a manual
``kubectl create job --from=cronjob/...`` or a person's laptop run. A holder renews the Lease
while it works; a crashed holder stops renewing and its Lease expires after LEASE_SECONDS.

We write this small lock rather than use ``kubernetes.leaderelection``: that module runs an
endless elect-and-renew loop with callbacks, made for long-lived controllers, not for a batch
run that wants one yes/no answer and a clean release.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..config import StateSettings
from ..errors import Conflict, KubernetesError, NotFound
from .client import LEASES, Kube, Obj, missing_namespace

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
RENEW_SECONDS = 15
RETRY_SECONDS = 3
"""After a renewal the API did not take (a timeout, a 5xx), the next try comes this soon."""
GIVE_UP_SECONDS = 15
"""A holder that could not renew gives up this long before its Lease expires, and stops its
helm: by the time another run may take the Lease over, nothing of this run writes any more."""
HELM_ANNOTATION = "ci-runner.io/helm-started-at"
"""On the Lease while the holder's helm runs, and kept when that helm did not finish its work:
the next holder then knows the pending release it finds is that (now dead) helm's."""


def micro_time(moment: datetime) -> str:
    """A MicroTime as the API server wants it: always six fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Holder:
    """Who holds the Lease and until when."""

    identity: str | None
    renewed: datetime | None
    seconds: int

    @classmethod
    def of(cls, lease: Obj) -> Holder:
        """The holder a Lease names (renewTime is a MicroTime, RFC 3339 with a 'Z')."""
        spec = lease.get("spec") or {}
        renewed = spec.get("renewTime")
        return cls(
            spec.get("holderIdentity"),
            datetime.fromisoformat(renewed.replace("Z", "+00:00")) if renewed else None,
            int(spec.get("leaseDurationSeconds") or 0),
        )

    def live(self, now: datetime) -> bool:
        """True while the holder's last renewal has not expired."""
        if not self.identity or self.renewed is None:
            return False
        return now < self.renewed + timedelta(seconds=self.seconds)


class Lease:
    """One run's hold on the release's Lease."""

    def __init__(self, kube: Kube, settings: StateSettings) -> None:
        self._kube = kube
        self._name = settings.state_configmap
        self._namespace = settings.cicd_namespace
        self.identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._resource_version: str | None = None
        self._acquired: str | None = None
        self._lost: str | None = None
        self._stop = threading.Event()
        self._writing = threading.Lock()
        self._helm_started: str | None = None
        self._on_lost: list[Callable[[], None]] = []
        self._orphan: str | None = None

    @property
    def orphaned_helm(self) -> datetime | None:
        """When the holders before us ran a helm they did not see finish: when it started.
        That helm is gone (it dies with its runner, and this run holds the Lease now), so a
        release it left pending-* may be recovered at once."""
        if not self._orphan:
            return None
        return datetime.fromisoformat(self._orphan.replace("Z", "+00:00"))

    @property
    def where(self) -> str:
        return f"Lease {self._namespace}/{self._name}"

    def try_acquire(self) -> Holder | None:
        """Take the Lease. Returns None when we hold it now, else the live holder that has it."""
        now = datetime.now(UTC)
        current = self._kube.read(LEASES, self._namespace, self._name)
        if current is not None:
            holder = Holder.of(current)
            if holder.live(now):
                return holder
            self._resource_version = current["metadata"].get("resourceVersion")
            annotations = current["metadata"].get("annotations") or {}
            self._orphan = annotations.get(HELM_ANNOTATION)
            # Carried on until a helm of ours finishes: a run that ends before its deploy
            # (a failed build) must not hide the dead helm from the run after it.
            self._helm_started = self._orphan
        self._acquired = micro_time(now)
        try:
            self._write(now)
        except Conflict:  # another run took it between our read and our write
            return Holder("another run", now, LEASE_SECONDS)
        except NotFound as e:  # the first write of a run: only a missing namespace says 404
            raise missing_namespace("CICD_NS", self._namespace) from e
        return None

    def _body(self, now: datetime, holding: bool) -> Obj:
        spec: Obj = {"leaseDurationSeconds": LEASE_SECONDS}
        if holding:
            spec.update(
                holderIdentity=self.identity,
                acquireTime=self._acquired,
                renewTime=micro_time(now),
            )
        metadata: Obj = {
            "name": self._name,
            "namespace": self._namespace,
            "labels": {"app.kubernetes.io/managed-by": "ci-runner"},
        }
        if self._helm_started:
            metadata["annotations"] = {HELM_ANNOTATION: self._helm_started}
        if self._resource_version:
            metadata["resourceVersion"] = self._resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def _write(self, now: datetime, holding: bool = True) -> None:
        with self._writing:  # the renewer's thread and the main thread (running_helm)
            written = self._kube.save(LEASES, self._body(now, holding))
            self._resource_version = written["metadata"]["resourceVersion"]

    def _may_still_hold(self) -> bool:
        """After a Conflict: whether the Lease may still be ours (someone else only annotated
        or relabelled it, or we cannot tell); if it is, the next write goes on from what is
        there now."""
        try:
            current = self._kube.read(LEASES, self._namespace, self._name)
        except KubernetesError:
            return True  # cannot tell: retried within the Lease's time
        if current is None or Holder.of(current).identity != self.identity:
            return False
        with self._writing:
            self._resource_version = current["metadata"].get("resourceVersion")
        return True

    def check(self) -> None:
        """Raise if renewing failed: another run may have taken over, so we must not write."""
        if self._lost:
            raise KubernetesError(f"lost {self.where} while working: {self._lost}")

    @contextmanager
    def running_helm(self, stop: Callable[[], None]) -> Iterator[None]:
        """Around a helm run: the Lease says so (written before helm starts), and ``stop`` (it
        must not block) is called if the Lease is lost meanwhile. The mark is cleared only when
        the block ends without an error: a helm that did not finish leaves it for the next run."""
        self.check()
        self._helm_started = micro_time(datetime.now(UTC))
        self._write(datetime.now(UTC))
        self._on_lost.append(stop)
        try:
            yield
        finally:
            self._on_lost.remove(stop)
        self._helm_started = None

    def _renew_until_stopped(self) -> None:
        # A SIGTERM must reach the main thread: there it interrupts the blocking read that
        # thread may be in. Delivered to this thread instead, it waits for that read to end.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        renewed = time.monotonic()
        wait: float = RENEW_SECONDS
        while not self._stop.wait(wait):
            try:
                self._write(datetime.now(UTC))
            except KubernetesError as e:
                if isinstance(e, Conflict) and not self._may_still_hold():
                    self._give_up(str(e))  # someone else holds it now
                    return
                # A timeout or a 5xx says nothing about who holds the Lease: try again while
                # it is still ours, and give up in time for no one to take it before we stop.
                left = renewed + LEASE_SECONDS - GIVE_UP_SECONDS - time.monotonic()
                if left <= 0:
                    self._give_up(str(e))
                    return
                log.warning("could not renew %s (retrying): %s", self.where, e)
                wait = min(RETRY_SECONDS, left)
                continue
            renewed = time.monotonic()
            wait = RENEW_SECONDS

    def _give_up(self, why: str) -> None:
        self._lost = why
        log.error("could not renew %s: %s; this run writes nothing more", self.where, why)
        for stop in list(self._on_lost):
            stop()

    @contextmanager
    def renewing(self) -> Iterator[Lease]:
        """Keep the acquired Lease renewed while the block runs, then release it."""
        renewer = threading.Thread(target=self._renew_until_stopped, name="lease", daemon=True)
        renewer.start()
        try:
            yield self
        finally:
            self._stop.set()
            renewer.join()
            self.release()

    def release(self) -> None:
        """Give the Lease up so the next run need not wait for it to expire."""
        if self._lost:
            return
        try:
            self._write(datetime.now(UTC), holding=False)
        except KubernetesError as e:  # harmless: the Lease expires by itself.
            log.warning("could not release %s (it expires by itself): %s", self.where, e)
