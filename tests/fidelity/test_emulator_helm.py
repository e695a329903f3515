"""Real helm (3.18 or 4.1, per CI_RUNNER_HELM) against the Kubernetes API: install, upgrade,
history, rollback, uninstall, waiting for Deployments and Jobs, and rolling back a failed Job."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube_emulator import Emulator
from tests.support.kube_target import KubeTarget

CHART = Path(__file__).parent / "charts" / "demo"
pytestmark = pytest.mark.helm


class Helm:
    """Runs the real helm binary against the test's API, with its own helm home."""

    def __init__(self, binary: str, major: int, kube: KubeTarget, home: Path) -> None:
        self.binary, self.major, self.kube = binary, major, kube
        self.env = {
            **kube.env(),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args, "--namespace", self.kube.namespace],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def upgrade(self, release: str, *values: str, check: bool = True, timeout: str = "60s") -> Any:
        rollback = "--atomic" if self.major == 3 else "--rollback-on-failure"
        sets = [arg for value in values for arg in ("--set", value)]
        return self.run(
            "upgrade",
            "--install",
            release,
            str(CHART),
            "--create-namespace",
            rollback,
            "--wait",
            "--wait-for-jobs",
            "--timeout",
            timeout,
            *sets,
            check=check,
        )

    def history(self, release: str) -> list[dict[str, Any]]:
        revisions: list[dict[str, Any]] = json.loads(
            self.run("history", release, "--output", "json").stdout
        )
        return revisions

    def values(self, release: str) -> dict[str, Any]:
        values: dict[str, Any] = json.loads(
            self.run("get", "values", release, "--output", "json").stdout
        )
        return values


@pytest.fixture
def helm(helm_bin: str, helm_major: int, kube: KubeTarget, tmp_path: Path) -> Helm:
    return Helm(helm_bin, helm_major, kube, tmp_path / "helm")


def kubectl_json(kubectl_bin: str, kube: KubeTarget, *args: str) -> Any:
    out = subprocess.run(
        [kubectl_bin, "--namespace", kube.namespace, *args, "--output", "json"],
        env=kube.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_install_upgrade_rollback_uninstall(helm: Helm, kubectl_bin: str, kube: KubeTarget) -> None:
    helm.upgrade("demo")
    config = kubectl_json(kubectl_bin, kube, "get", "configmap", "demo-config")
    assert config["data"] == {"message": "hello"}
    deployment = kubectl_json(kubectl_bin, kube, "get", "deployment", "demo-web")
    assert deployment["status"]["readyReplicas"] == 1
    job = kubectl_json(kubectl_bin, kube, "get", "job", "demo-migrate")
    assert job["status"]["succeeded"] == 1

    helm.upgrade("demo", "message=second")
    config = kubectl_json(kubectl_bin, kube, "get", "configmap", "demo-config")
    assert config["data"] == {"message": "second"}
    deployment = kubectl_json(kubectl_bin, kube, "get", "deployment", "demo-web")
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"message": "second"}
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert [env["name"] for env in container["env"]] == ["MESSAGE"]
    assert deployment["status"]["observedGeneration"] == deployment["metadata"]["generation"]
    assert [(r["revision"], r["status"]) for r in helm.history("demo")] == [
        (1, "superseded"),
        (2, "deployed"),
    ]

    helm.run("rollback", "demo", "1", "--wait", "--wait-for-jobs", "--timeout", "60s")
    history = helm.history("demo")
    assert [(r["revision"], r["status"]) for r in history][-1] == (3, "deployed")
    assert history[-1]["description"] == "Rollback to 1"
    config = kubectl_json(kubectl_bin, kube, "get", "configmap", "demo-config")
    assert config["data"] == {"message": "hello"}

    helm.run("uninstall", "demo", "--wait", "--timeout", "60s")
    left = kubectl_json(kubectl_bin, kube, "get", "configmaps,deployments,jobs,secrets,services")
    assert [item["metadata"]["name"] for item in left["items"]] == ["kube-root-ca.crt"]


def test_release_secrets_are_readable(helm: Helm, kubectl_bin: str, kube: KubeTarget) -> None:
    """helm writes its release Secrets as protobuf; they must read back as helm wrote them."""
    helm.upgrade("store", "replicas=2")
    secrets = kubectl_json(kubectl_bin, kube, "get", "secrets", "-l", "owner=helm,name=store")
    [secret] = secrets["items"]
    assert secret["type"] == "helm.sh/release.v1"
    assert secret["metadata"]["labels"]["status"] == "deployed"
    assert secret["data"]["release"]
    assert helm.values("store") == {"replicas": 2}


def test_failing_job_rolls_back(
    helm: Helm, emulator: Emulator, kubectl_bin: str, kube: KubeTarget
) -> None:
    helm.upgrade("demo")
    emulator.jobs.behave("fail", name="demo-broken", termination_message="migration failed")

    # helm 3 retries a failed Job's readiness check until its timeout; helm 4 fails at once
    result = helm.upgrade("demo", "job.name=broken", "message=bad", check=False, timeout="6s")

    assert result.returncode != 0
    history = helm.history("demo")
    assert [(r["revision"], r["status"]) for r in history] == [
        (1, "superseded"),
        (2, "failed"),
        (3, "deployed"),
    ]
    assert history[-1]["description"] == "Rollback to 1"
    config = kubectl_json(kubectl_bin, kube, "get", "configmap", "demo-config")
    assert config["data"] == {"message": "hello"}
    job = emulator.get("batch/v1", "jobs", kube.namespace, "demo-migrate")
    assert job is not None
    assert job["status"]["succeeded"] == 1


def test_wait_times_out_on_a_held_job(helm: Helm, emulator: Emulator) -> None:
    """A Job that never finishes makes --wait-for-jobs fail (and roll back) at the timeout."""
    emulator.jobs.behave("hold", name="demo-slow")
    rollback = "--atomic" if helm.major == 3 else "--rollback-on-failure"
    result = helm.run(
        "upgrade",
        "--install",
        "demo",
        str(CHART),
        rollback,
        "--wait",
        "--wait-for-jobs",
        "--timeout",
        "2s",
        "--set",
        "job.name=slow",
        check=False,
    )
    assert result.returncode != 0
    # the failed first install is uninstalled again
    assert "release: not found" in helm.run("history", "demo", check=False).stderr


@pytest.mark.kubelet  # a PersistentVolumeClaim is Bound by a provisioner, which kwok is not
def test_wait_for_statefulset_daemonset_and_claim(
    helm: Helm, kubectl_bin: str, kube: KubeTarget
) -> None:
    helm.upgrade("extra", "extras.enabled=true", "job.enabled=false")
    statefulset = kubectl_json(kubectl_bin, kube, "get", "statefulset", "extra-db")
    assert statefulset["status"]["readyReplicas"] == 2
    claim = kubectl_json(kubectl_bin, kube, "get", "pvc", "extra-data")
    assert claim["status"]["phase"] == "Bound"


def test_job_hooks(helm: Helm, emulator: Emulator, kube: KubeTarget) -> None:
    """helm watches hook Jobs until they end, deletes succeeded ones and fails on failed ones."""
    helm.upgrade("hooked", "hook.enabled=true")
    assert emulator.get("batch/v1", "jobs", kube.namespace, "hooked-hook") is None
    assert len(emulator.list("v1", "pods", kube.namespace, "job-name=hooked-hook")) == 0

    emulator.jobs.behave("fail", name="hooked-hook")
    result = helm.upgrade("hooked", "hook.enabled=true", check=False)
    assert result.returncode != 0
    assert "pre-upgrade hooks failed" in result.stderr
    failed = emulator.get("batch/v1", "jobs", kube.namespace, "hooked-hook")
    assert failed is not None
    assert failed["status"]["conditions"][-1]["type"] == "Failed"


def test_upgrade_removes_what_the_chart_dropped(
    helm: Helm, kubectl_bin: str, kube: KubeTarget
) -> None:
    """helm 3 patches three-way, helm 4 applies server-side: either way a dropped field goes."""
    helm.upgrade("drop", "extraEnv=on", "job.enabled=false")
    helm.upgrade("drop", "job.enabled=false")
    deployment = kubectl_json(kubectl_bin, kube, "get", "deployment", "drop-web")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert [env["name"] for env in container["env"]] == ["MESSAGE"]
