"""Helpers for the tests only a real API server can answer (tests/e2e/real/).

They run when the end-to-end suite points at a real cluster (``CI_RUNNER_TEST_KUBECONFIG``, as
``bash scripts/e2e-real.sh`` sets it) and skip on the emulator. Those that choose what a pod does
also need kwok playing the kubelet with tests/cluster/stages.yaml (``CI_RUNNER_TEST_KWOK=1``, set
by the launcher in tests/cluster), and skip on another cluster, where real pods run.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch

from tests.cluster.controlplane import DIGEST
from tests.e2e.appkit import DEPLOYMENT, IMAGE, RELEASE, REPO, App
from tests.support import charts

KWOK = os.environ.get("CI_RUNNER_TEST_KWOK") == "1"
ETCD = os.environ.get("CI_RUNNER_TEST_ETCD", "")
CHART_RELEASE = "ci"
SERVICE_ACCOUNT = f"{CHART_RELEASE}-{RELEASE}"
"""The runner's ServiceAccount the product chart makes for the app (``<release>-<app>``)."""
__all__ = ["DIGEST", "KWOK", "SERVICE_ACCOUNT", "fate"]  # DEPLOYER below

# The app's chart with a Deployment of one replica: kwok makes its pod Ready; or never Ready.
ONE_REPLICA = DEPLOYMENT.replace("replicas: 0", "replicas: 1")
NEVER_READY = ONE_REPLICA.replace(
    "      containers:",
    "      tolerations: [{key: ci-runner.test/fate, operator: Equal, value: pull-error,"
    " effect: NoSchedule}]\n      containers:",
)
TEMPLATE = "deploy/chart/templates/deployment.yaml"


def require_real(app: App) -> None:
    if app.kube.emulator is not None:
        pytest.skip("asks what a real API server does: run bash scripts/e2e-real.sh")


def require_kwok(app: App) -> None:
    require_real(app)
    if not KWOK:
        pytest.skip("chooses pods' fates with kwok's Stages (tests/cluster/stages.yaml)")


def fate(value: str) -> str:
    """A BUILD_POD that gives the build pod ``value`` as its fate in tests/cluster/stages.yaml."""
    toleration = {
        "key": "ci-runner.test/fate",
        "operator": "Equal",
        "value": value,
        "effect": "NoSchedule",
    }
    return json.dumps({"tolerations": [toleration]})


def kubectl(app: App, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """kubectl as the cluster's admin; with ``check``, a failure shows what kubectl said."""
    return _run(["kubectl", *args], app, check)


def _run(argv: list[str], app: App, check: bool) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=app.env, capture_output=True, text=True, timeout=180)
    if check and done.returncode:
        raise AssertionError(f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def install_chart(app: App, helm: str, tmp_path: Path, **app_values: Any) -> None:
    """Install the product chart for ``app`` into its CICD namespace, as a platform team does:
    one app, deploying into the app's deploy namespace (created first: the chart's Role there
    needs it)."""
    kubectl(app, "create", "namespace", app.deploy_ns)
    values = {
        "runner": {"createNamespaceRole": False},
        "apps": [
            {
                "name": RELEASE,
                "repo": REPO,
                "branch": "main",
                "image": IMAGE,
                "chartPath": "deploy/chart",
                "release": RELEASE,
                "deployNamespace": app.deploy_ns,
                "runner": {"githubApiUrl": app.env["GITHUB_API_URL"]},
                **app_values,
            }
        ],
    }
    path = tmp_path / "runner-values.yaml"
    path.write_text(yaml.safe_dump(values))
    _run(
        [
            helm,
            "upgrade",
            "--install",
            CHART_RELEASE,
            str(charts.CHART),
            "--namespace",
            app.cicd,
            "--values",
            str(path),
            "--wait",
        ],
        app,
        check=True,
    )


DEPLOYER = f"{SERVICE_ACCOUNT}-deployer"
"""The ServiceAccount of the deploy namespace the chart makes for the app's helm to act as."""


def as_service_account(app: App, tmp_path: Path, name: str = SERVICE_ACCOUNT) -> dict[str, str]:
    """The runner's environment with a kubeconfig that holds a token of ServiceAccount ``name``
    from the TokenRequest API (as the pod's projected token is), and the admin's cluster entry;
    and DEPLOYER as the chart's CronJob sets it."""
    token = kubectl(app, "create", "token", name, "--namespace", app.cicd, "--duration", "1h")
    admin = yaml.safe_load(Path(app.kube.kubeconfig).read_text())
    cluster = admin["clusters"][0]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": name, "user": {"token": token.stdout.strip()}}],
        "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name}}],
        "current-context": name,
    }
    path = tmp_path / f"kubeconfig-{name}"
    path.write_text(json.dumps(kubeconfig))
    return {"KUBECONFIG": str(path), "DEPLOYER": DEPLOYER}


def role(app: App, name: str, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        kubectl(app, "get", "role", name, "--namespace", namespace, "--output", "json").stdout
    )
    return found


def replace_role(app: App, body: dict[str, Any], tmp_path: Path) -> None:
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        body["metadata"].pop(key, None)
    path = tmp_path / "role.json"
    path.write_text(json.dumps(body))
    kubectl(app, "replace", "--filename", str(path))


def secret_data(app: App, name: str, namespace: str) -> dict[str, str]:
    found = json.loads(
        kubectl(app, "get", "secret", name, "--namespace", namespace, "--output", "json").stdout
    )
    return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}


def wait_for_pending_upgrade(app: App) -> None:
    """Block (a watch) until helm has marked the release pending-upgrade."""
    with app.api() as api:
        for _ in watch.Watch().stream(
            client.CoreV1Api(api).list_namespaced_secret,
            app.deploy_ns,
            label_selector=f"owner=helm,name={RELEASE},status=pending-upgrade",
            timeout_seconds=60,
        ):
            return
    raise AssertionError("helm never marked the release pending-upgrade")
