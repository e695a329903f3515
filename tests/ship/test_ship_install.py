"""End to end: the chart installed with real helm into a Kubernetes API (the emulator, or a real
cluster with CI_RUNNER_TEST_KUBECONFIG), then a run triggered by hand as NOTES.txt says."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.ship.shipkit import container_env
from tests.support import charts
from tests.support.kube_target import KubeTarget

pytestmark = pytest.mark.helm


def run(cmd: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_install_then_trigger_a_run_by_hand(
    kube: KubeTarget, helm_bin: str, kubectl_bin: str, tools_path: str, tmp_path: Path
) -> None:
    ns = kube.namespace
    values = tmp_path / "values.yaml"
    # The deploy namespace is the test's own namespace too: nothing is left behind on a cluster.
    values.write_text(
        "runner:\n"
        "  createNamespaceRole: false\n"
        "apps:\n"
        "  - name: demo\n"
        "    repo: example-org/demo\n"
        "    branch: trunk\n"
        "    image: registry.example.com/example-org/demo\n"
        "    chartPath: deploy/chart\n"
        "    release: demo\n"
        f"    deployNamespace: {ns}\n"
        "    secrets: {gitTokenSecret: demo-git-token}\n"
    )
    env = {**kube.env(), "PATH": tools_path, "HOME": str(tmp_path)}
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[var] = str(tmp_path / var.lower())
    installed = run(
        [helm_bin, "upgrade", "--install", "ci", str(charts.CHART), "-n", ns, "-f", str(values)],
        env,
    )

    # NOTES.txt tells how to trigger a run: that very command must work.
    (trigger,) = [
        line.strip() for line in installed.splitlines() if "kubectl create job --from=" in line
    ]
    assert trigger.startswith("kubectl create job --from=cronjob/ci-demo ci-demo-manual-$(date")
    run(["bash", "-c", trigger], env)

    jobs = json.loads(run([kubectl_bin, "get", "jobs", "-n", ns, "-o", "json"], env))["items"]
    (job,) = [j for j in jobs if re.fullmatch(r"ci-demo-manual-\d+", j["metadata"]["name"])]
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ci-demo"
    assert pod["securityContext"]["runAsNonRoot"] is True
    env_of_job = container_env(job)
    values_of_job = {k: v.get("value") for k, v in env_of_job.items()}
    assert values_of_job["REPO"] == "example-org/demo"
    assert values_of_job["BRANCH"] == "trunk"
    assert values_of_job["IMAGE"] == "registry.example.com/example-org/demo"
    assert values_of_job["CHART_PATH"] == "deploy/chart"
    assert values_of_job["RELEASE"] == "demo"
    assert values_of_job["CICD_NS"] == ns
    assert values_of_job["DEPLOY_NS"] == ns
    assert values_of_job["GIT_TOKEN_SECRET"] == "demo-git-token"

    # The RBAC objects made it into the API as rendered, and suspend works as NOTES says.
    run([kubectl_bin, "get", "role/ci-demo", "role/ci-demo-deploy", "-n", ns], env)
    patch = '{"spec":{"suspend":true}}'
    run([kubectl_bin, "patch", "cronjob", "ci-demo", "-n", ns, "-p", patch], env)
    cronjob = json.loads(
        run([kubectl_bin, "get", "cronjob", "ci-demo", "-n", ns, "-o", "json"], env)
    )
    assert cronjob["spec"]["suspend"] is True

    token_ref = env_of_job["GIT_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token_ref == {"name": "demo-git-token", "key": "token"}
