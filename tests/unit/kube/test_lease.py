"""The Lease over real HTTP (the emulator): renewals ride out transient errors, and a Lease
someone else took stops this run's writing and its helm."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ci_runner.config import Settings, load
from ci_runner.kube import client as kube_client
from ci_runner.kube import lease as lease_module
from ci_runner.kube.lease import Lease
from kubernetes import config

from tests.support.kube_target import KubeTarget


def load_settings(namespace: str) -> Settings:
    env = {"REPO": "o/r", "IMAGE": "r.io/o/r", "CHART_PATH": "c", "RELEASE": "r"}
    return load(Settings, {}, {**env, "CICD_NS": namespace, "VERIFY_SSL": "false"})


@pytest.fixture
def api(
    kube: KubeTarget, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[kube_client.Kube]:
    """The runner's own Kube client on the emulator, with renewals every 50 ms."""
    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 0.05)
    monkeypatch.setattr(lease_module, "RETRY_SECONDS", 0.05)
    with config.new_client_from_config(config_file=kube.kubeconfig) as api_client:
        api_client.user_agent = "ci-runner/test"
        yield kube_client.Kube(api_client, 5)


@pytest.fixture
def lease(api: kube_client.Kube, kube: KubeTarget) -> Lease:
    return Lease(api, load_settings(kube.namespace))


def lease_puts(emulator: Any) -> int:
    return sum(1 for r in emulator.requests if r.method == "PUT" and "/leases/" in r.path)


def until(condition: Any, within: float = 10) -> None:
    """Poll ``condition`` until it holds (a deadline, not a sleep as synchronisation)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_renewals_are_retried_after_transient_errors(lease: Lease, emulator: Any) -> None:
    assert lease.try_acquire() is None
    emulator.faults.add("PUT", "/leases/", 500, times=3)  # three renewals fail
    with lease.renewing():
        until(lambda: lease_puts(emulator) >= 5)  # and the ones after them are taken
        lease.check()  # still ours: the run may go on writing


def test_a_lease_someone_else_took_stops_the_run_and_its_helm(
    lease: Lease, emulator: Any, kube: KubeTarget
) -> None:
    assert lease.try_acquire() is None
    stopped = threading.Event()
    with lease.renewing(), lease.running_helm(stopped.set):
        taken = emulator.get("coordination.k8s.io/v1", "leases", kube.namespace, "ci-runner-r")
        taken["spec"]["holderIdentity"] = "someone-else"
        emulator.put(taken)
        assert stopped.wait(10), "helm was not stopped"
        with pytest.raises(Exception, match="lost Lease"):
            lease.check()


@pytest.mark.parametrize("finished", [True, False])
def test_the_next_holder_knows_of_a_helm_that_never_finished(
    api: kube_client.Kube, kube: KubeTarget, finished: bool
) -> None:
    first = Lease(api, load_settings(kube.namespace))
    assert first.try_acquire() is None
    with contextlib.suppress(RuntimeError), first.running_helm(lambda: None):
        if not finished:
            raise RuntimeError("helm did not finish")
    first.release()
    second = Lease(api, load_settings(kube.namespace))  # the next run
    assert second.try_acquire() is None
    assert (second.orphaned_helm is None) == finished
