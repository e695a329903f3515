"""The Lease that keeps two runs apart, through the real kubernetes client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ci_runner.config import StateSettings, load
from ci_runner.kube import lease as lock
from ci_runner.kube.client import Kube
from ci_runner.kube.lease import Lease
from kubernetes import client, watch

from tests.support.kube_target import KubeTarget


@pytest.fixture
def settings(kube: KubeTarget) -> StateSettings:
    return load(StateSettings, {}, {"RELEASE": "shop", "CICD_NS": kube.namespace})


@pytest.fixture
def ours(api: client.ApiClient) -> Kube:
    """The runner's plain-dict view of the same API."""
    return Kube(api, 30)


def holder(api: client.ApiClient, s: StateSettings) -> str | None:
    lease = client.CoordinationV1Api(api).read_namespaced_lease(s.state_configmap, s.cicd_namespace)
    identity: str | None = lease.spec.holder_identity
    return identity


def test_one_holder_at_a_time_and_release_frees_it(
    api: client.ApiClient, ours: Kube, settings: StateSettings
) -> None:
    first, second = Lease(ours, settings), Lease(ours, settings)
    assert first.try_acquire() is None
    held = second.try_acquire()
    assert held is not None and held.identity == first.identity
    first.release()
    assert holder(api, settings) is None
    assert second.try_acquire() is None


def test_an_expired_holder_is_taken_over(
    api: client.ApiClient, ours: Kube, settings: StateSettings
) -> None:
    crashed = Lease(ours, settings)
    assert crashed.try_acquire() is None
    leases = client.CoordinationV1Api(api)
    lease = leases.read_namespaced_lease(settings.state_configmap, settings.cicd_namespace)
    lease.spec.renew_time = datetime.now(UTC) - timedelta(seconds=lock.LEASE_SECONDS + 1)
    leases.replace_namespaced_lease(lease.metadata.name, settings.cicd_namespace, lease)
    successor = Lease(ours, settings)
    assert successor.try_acquire() is None
    assert holder(api, settings) == successor.identity


def test_the_holder_renews_while_it_works(
    api: client.ApiClient, ours: Kube, settings: StateSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "RENEW_SECONDS", 0.01)
    working = Lease(ours, settings)
    assert working.try_acquire() is None
    leases = client.CoordinationV1Api(api)
    first = leases.read_namespaced_lease(settings.state_configmap, settings.cicd_namespace)
    with working.renewing():
        # Wait for the renewal itself (a watch event), not for time to pass.
        for event in watch.Watch().stream(
            leases.list_namespaced_lease,
            settings.cicd_namespace,
            field_selector=f"metadata.name={settings.state_configmap}",
            resource_version=first.metadata.resource_version,
            timeout_seconds=30,
        ):
            renewed = event["object"].spec
            if renewed.renew_time != first.spec.renew_time:
                assert renewed.holder_identity == working.identity
                break
        else:
            pytest.fail("the Lease was not renewed")
        working.check()
    assert holder(api, settings) is None  # released on the way out
