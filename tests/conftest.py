"""Shared fixtures: the pinned tools, a Kubernetes API (emulator or real cluster), a GitHub fake.

Set ``CI_RUNNER_HELM=4`` to run the helm-touching tests with helm 4.1 (default: helm 3.18).
Set ``CI_RUNNER_TEST_KUBECONFIG=/path/to/kubeconfig`` to run the end-to-end tests against a real
cluster (kind, k3d, ...) instead of the emulator; tests that need emulator-only controls skip.
``bash scripts/e2e-real.sh`` does that with the control plane of tests/cluster, where kwok plays
the kubelet (``CI_RUNNER_TEST_KWOK=1``): tests marked ``kubelet`` skip there.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.support.charts import TOOLS
from tests.support.github_fake import GitHubFake
from tests.support.kube_emulator import Emulator
from tests.support.kube_target import KubeTarget
from tests.support.notify_server import NotifyServer

REAL_KUBECONFIG = os.environ.get("CI_RUNNER_TEST_KUBECONFIG")
KWOK = bool(REAL_KUBECONFIG) and os.environ.get("CI_RUNNER_TEST_KWOK") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under kwok no kubelet mounts, pulls or checks anything: its tests cannot tell there."""
    if KWOK:
        skip = pytest.mark.skip(reason="needs a real kubelet; kwok plays it on this control plane")
        for item in items:
            if item.get_closest_marker("kubelet"):
                item.add_marker(skip)


def _tool(relative: str) -> str:
    path = TOOLS / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: run `python scripts/install_tools.py` first")
    return str(path)


@pytest.fixture(scope="session")
def helm_major() -> int:
    """The helm major version this run tests with (3 or 4)."""
    return int(os.environ.get("CI_RUNNER_HELM", "3"))


@pytest.fixture(scope="session")
def helm_bin(helm_major: int) -> str:
    """Path to the real, pinned helm binary of the chosen major."""
    return _tool(f"helm{helm_major}/helm")


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    """Path to the real, pinned kubectl binary."""
    return _tool("bin/kubectl")


@pytest.fixture(scope="session")
def tools_path(helm_bin: str, kubectl_bin: str) -> str:
    """A PATH that finds the chosen helm and kubectl first."""
    dirs = [str(Path(helm_bin).parent), str(Path(kubectl_bin).parent)]
    return os.pathsep.join([*dirs, os.environ.get("PATH", "")])


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    """A Kubernetes API for one test: a fresh emulator, or the real cluster when one is given."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    if REAL_KUBECONFIG:
        kubectl = _tool("bin/kubectl")
        env = {**os.environ, "KUBECONFIG": REAL_KUBECONFIG}
        subprocess.run([kubectl, "create", "namespace", namespace], check=True, env=env)
        try:
            yield KubeTarget(REAL_KUBECONFIG, namespace, None)
        finally:
            subprocess.run(
                [kubectl, "delete", "namespace", namespace, "--wait=false"], check=False, env=env
            )
        return
    emulator = Emulator()
    emulator.start()
    try:
        kubeconfig = tmp_path / "kubeconfig"
        emulator.write_kubeconfig(kubeconfig)
        emulator.create_namespace(namespace)
        yield KubeTarget(str(kubeconfig), namespace, emulator)
    finally:
        emulator.stop()


@pytest.fixture
def api(kube: KubeTarget) -> Iterator[client.ApiClient]:
    """The kubernetes package's own client on ``kube``, for tests that look without the runner."""
    with config.new_client_from_config(config_file=kube.kubeconfig) as api_client:
        yield api_client


@pytest.fixture
def emulator(kube: KubeTarget) -> Emulator:
    """The emulator behind ``kube``; skips on a real cluster (its controls have no equivalent)."""
    if kube.emulator is None:
        pytest.skip("needs the Kubernetes API emulator's controls; a real cluster is in use")
    return kube.emulator


@pytest.fixture
def github() -> Iterator[GitHubFake]:
    """A fresh GitHub API fake on 127.0.0.1."""
    fake = GitHubFake()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def notified() -> Iterator[NotifyServer]:
    """A NOTIFY_URL on 127.0.0.1 that keeps the JSON bodies it receives."""
    server = NotifyServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
