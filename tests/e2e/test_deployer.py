"""helm acts as the app's deployer (DEPLOYER), end to end: every request helm makes carries
``Impersonate-User: system:serviceaccount:<DEPLOY_NS>:<DEPLOYER>``, the emulator (or a real
cluster) authorizes each as that ServiceAccount with the chart's deploy rules, and the runner's
own client impersonates no one. The deployer's objects are the product chart's, rendered for
the test's deploy namespace. Against a real control plane as its ServiceAccount, see
tests/e2e/real/test_deployer.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.appkit import App
from tests.support import charts

pytestmark = pytest.mark.helm

DEPLOYER = "ci-shop-deployer"
"""As the chart names the deployer of app shop in release ci (tests/support/chart_values)."""


def the_charts_deployer(app: App, helm_bin: str, kubectl_bin: str, tmp_path: Path) -> None:
    """Create the deploy namespace and the chart's deployer there: its ServiceAccount, its
    Role of deploy rules and the binding, as ``helm template`` renders them."""
    values = yaml.safe_load(Path(charts.values_file("e2e-app")).read_text())
    values["apps"][0]["deployNamespace"] = app.deploy_ns
    path = tmp_path / "deployer-values.yaml"
    path.write_text(yaml.safe_dump(values))
    docs = charts.render_chart([path], namespace=app.cicd, helm=helm_bin)
    wanted = {("ServiceAccount", DEPLOYER), ("Role", "ci-shop-deploy"),
              ("RoleBinding", "ci-shop-deploy")}  # fmt: skip
    objects = [d for d in docs if (d["kind"], d["metadata"]["name"]) in wanted]
    assert len(objects) == len(wanted)
    env = app.kube.env()
    subprocess.run([kubectl_bin, "create", "namespace", app.deploy_ns], env=env, check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run([kubectl_bin, "apply", "-f", "-"], input=yaml.safe_dump_all(objects), env=env,
                   text=True, check=True, capture_output=True)  # fmt: skip


def test_helm_acts_as_the_deployer_and_the_runner_as_itself(
    app: App, helm_bin: str, kubectl_bin: str, tmp_path: Path
) -> None:
    the_charts_deployer(app, helm_bin, kubectl_bin, tmp_path)
    done = app.run(DEPLOYER=DEPLOYER)
    assert done.code == 0, done.output
    assert app.heads[-1] in app.deployed_image()
    emulator = app.kube.emulator
    if emulator is None:
        return  # the request log is the emulator's
    user = f"system:serviceaccount:{app.deploy_ns}:{DEPLOYER}"
    helm = [r for r in emulator.requests if r.user_agent.startswith("Helm/")]
    assert helm and {r.impersonating for r in helm} == {user}
    assert [r.status for r in helm if r.status == 403] == []
    runner = [r for r in emulator.requests if r.user_agent.startswith("ci-runner/")]
    assert runner and {r.impersonating for r in runner} == {""}


def test_a_deployer_without_its_deploy_rules_fails_the_deploy_naming_it(
    app: App, helm_bin: str, kubectl_bin: str, tmp_path: Path
) -> None:
    """helm is refused as the deployer (its RoleBinding gone): the commit's deploy fails, the
    message names the deployer; the runner's own identity would have been allowed."""
    the_charts_deployer(app, helm_bin, kubectl_bin, tmp_path)
    subprocess.run([kubectl_bin, "delete", "rolebinding", "ci-shop-deploy", "-n", app.deploy_ns],
                   env=app.kube.env(), check=True, capture_output=True)  # fmt: skip
    done = app.run(DEPLOYER=DEPLOYER)
    assert done.code == 1, done.output
    assert f'User "system:serviceaccount:{app.deploy_ns}:{DEPLOYER}" cannot' in done.stderr
