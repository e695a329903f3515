"""Watches on a real API server: after etcd is compacted (kube-apiserver does it every 5
minutes; the tests do it at once), a resourceVersion the server no longer serves ends the watch
with 410 (an ERROR event holding a Status), which the runner must read as Gone, with the
server's words, so that the build watch reads the Job again instead of failing the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ci_runner.errors import Gone
from ci_runner.kube.build_watch import Watcher
from ci_runner.kube.client import JOBS, Kube
from kubernetes import config

from tests.cluster.controlplane import compact
from tests.e2e.appkit import App
from tests.e2e.real.realkit import ETCD, kubectl, require_kwok, require_real
from tests.support.settings import app_settings


def compacted(app: App) -> None:
    """Compact etcd at its current revision: older resourceVersions are gone from then on."""
    require_real(app)
    if not ETCD:
        pytest.skip("compacts the test ground's etcd (a cluster of your own compacts on its own)")
    compact(ETCD)


def test_a_too_old_resource_version_is_gone_with_the_servers_reason(app: App) -> None:
    kubectl(app, "create", "job", "w", "--image=busybox", "-n", app.cicd)
    compacted(app)
    with config.new_client_from_config(app.kube.kubeconfig) as api, pytest.raises(Gone) as raised:
        list(Kube(api, 10).watch(JOBS, app.cicd, "w", "1", 5))
    assert raised.value.status == 410
    assert "too old" in str(
        raised.value
    )  # "The resourceVersion for the provided watch is too old."


def test_the_build_watch_reads_again_after_a_410_and_gets_its_verdict(app: App) -> None:
    """The Job is read, then watched: a 410 between the two (the watch cache moved on) makes
    the next look read it again."""
    require_kwok(app)
    kubectl(app, "create", "job", "b", "--image=kaniko", "-n", app.cicd)
    compacted(app)
    settings = app_settings(CICD_NS=app.cicd)
    with config.new_client_from_config(app.kube.kubeconfig) as api:
        kube = Kube(api, 10)
        stale = _StaleOnce(kube)
        result = Watcher(stale, settings, "b").wait()  # type: ignore[arg-type]
    assert result.succeeded
    assert stale.gone == 1


class _StaleOnce:
    """The runner's Kube, whose first watch starts from a resourceVersion long gone."""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube
        self.gone = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    def watch(
        self, kind: Any, namespace: str, name: str, since: str, seconds: int
    ) -> Iterator[tuple[str, Any]]:
        if not self.gone:
            try:
                yield from self._kube.watch(JOBS, namespace, name, "1", seconds)
            except Gone:
                self.gone += 1
                raise
        else:
            yield from self._kube.watch(JOBS, namespace, name, since, seconds)
