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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..config import StateSettings
from ..errors import Conflict, KubernetesError, NotFound
from .client import LEASES, Kube, Obj, missing_namespace

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
RENEW_SECONDS = 15


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
        if self._resource_version:
            metadata["resourceVersion"] = self._resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def _write(self, now: datetime, holding: bool = True) -> None:
        written = self._kube.save(LEASES, self._body(now, holding))
        self._resource_version = written["metadata"]["resourceVersion"]

    def check(self) -> None:
        """Raise if renewing failed: another run may have taken over, so we must not write."""
        if self._lost:
            raise KubernetesError(f"lost {self.where} while working: {self._lost}")

    def _renew_until_stopped(self) -> None:
        # A SIGTERM must reach the main thread: there it interrupts the blocking read that
        # thread may be in. Delivered to this thread instead, it waits for that read to end.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self._write(datetime.now(UTC))
            except KubernetesError as e:
                self._lost = str(e)
                log.error("could not renew %s: %s", self.where, e)
                return

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
