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
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client

from . import kube
from .errors import KubernetesError
from .settings import Settings

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

    def live(self, now: datetime) -> bool:
        """True while the holder's last renewal has not expired."""
        if not self.identity or self.renewed is None:
            return False
        return now < self.renewed + timedelta(seconds=self.seconds)


class Lease:
    """One run's hold on the release's Lease."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self._api = client.CoordinationV1Api(api)
        self._name = settings.state_configmap
        self._namespace = settings.cicd_namespace
        self._timeout = settings.api_timeout
        self.identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._resource_version: str | None = None
        self._acquired: str | None = None
        self._lost: str | None = None
        self._stop = threading.Event()

    @property
    def where(self) -> str:
        return f"Lease {self._namespace}/{self._name}"

    def acquire(self) -> Holder | None:
        """Take the Lease. Returns None when taken, else the live holder that has it."""
        now = datetime.now(UTC)
        try:
            with kube.translated(f"reading {self.where}"):
                current = self._api.read_namespaced_lease(
                    self._name, self._namespace, _request_timeout=self._timeout
                )
        except KubernetesError as e:
            if e.status != 404:
                raise
            current = None
        if current is not None:
            spec = current.spec
            holder = Holder(spec.holder_identity, spec.renew_time, spec.lease_duration_seconds or 0)
            if holder.live(now):
                return holder
            self._resource_version = current.metadata.resource_version
        self._acquired = micro_time(now)
        try:
            self._write(now)
        except KubernetesError as e:
            if e.status == 409:  # another run took it between our read and our write
                return Holder("another run", now, LEASE_SECONDS)
            raise
        return None

    def _body(self, now: datetime, holding: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {"leaseDurationSeconds": LEASE_SECONDS}
        if holding:
            spec.update(
                holderIdentity=self.identity,
                acquireTime=self._acquired,
                renewTime=micro_time(now),
            )
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self._name,
                "namespace": self._namespace,
                "resourceVersion": self._resource_version,
                "labels": {"app.kubernetes.io/managed-by": "ci-runner"},
            },
            "spec": spec,
        }

    def _write(self, now: datetime, holding: bool = True) -> None:
        body = self._body(now, holding)
        with kube.translated(f"writing {self.where}"):
            if self._resource_version is None:
                written = self._api.create_namespaced_lease(
                    self._namespace, body, _request_timeout=self._timeout
                )
            else:
                written = self._api.replace_namespaced_lease(
                    self._name, self._namespace, body, _request_timeout=self._timeout
                )
        self._resource_version = written.metadata.resource_version

    def check(self) -> None:
        """Raise if renewing failed: another run may have taken over, so we must not write."""
        if self._lost:
            raise KubernetesError(f"lost {self.where} while working: {self._lost}")

    def _renew_until_stopped(self) -> None:
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
