"""helm as the app's deployer, not as the runner, on a real API server: the product chart
installed, the runner run with its ServiceAccount's token and the chart's DEPLOYER, and an app
chart written by an attacker. The real RBAC authorizer and impersonation filter decide.

What an app's chart can do is what its deployer may, in its own namespace: a ``lookup`` of
another app's Secret in the CICD namespace is forbidden (never its data), a Job there is
refused, and the runner itself may act as no one but its app's deployer.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.appkit import App
from tests.e2e.real.realkit import (
    DEPLOYER,
    SERVICE_ACCOUNT,
    as_service_account,
    install_chart,
    kubectl,
    require_kwok,
)

pytestmark = pytest.mark.helm

STOLEN = "fake-other-apps-token-5ec7e7-0123456789"
"""Another app's GitHub token in the CICD namespace: must never be read by this app's chart."""


@pytest.fixture
def installed(app: App, helm_bin: str, tmp_path: Path) -> App:
    """The chart installed for the app, and another app's token Secret beside the runner's."""
    require_kwok(app)
    install_chart(app, helm_bin, tmp_path)
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "billing-git-token"},
            "stringData": {"token": STOLEN}}  # fmt: skip
    subprocess.run(["kubectl", "apply", "-n", app.cicd, "-f", "-"], input=json.dumps(body),
                   env=app.env, text=True, capture_output=True, check=True)  # fmt: skip
    return app


def leaked(app: App, output: str) -> list[str]:
    """Where the stolen token shows: the run's output, or anything in the deploy namespace."""
    where = [] if STOLEN not in output else ["the run's output"]
    b64 = base64.b64encode(STOLEN.encode()).decode()
    for kind in ("configmaps", "secrets"):
        dump = kubectl(app, "get", kind, "-n", app.deploy_ns, "-o", "json").stdout
        if STOLEN in dump or b64 in dump:
            where.append(f"{kind} in {app.deploy_ns}")
    return where


def test_a_deploy_goes_through_the_deployer_and_not_as_the_runner(
    installed: App, tmp_path: Path
) -> None:
    app = installed
    done = app.run(**as_service_account(app, tmp_path))
    assert done.code == 0, done.output
    assert app.heads[-1] in app.deployed_image()
    records = kubectl(app, "get", "secrets", "-n", app.deploy_ns, "-l", "owner=helm", "-o", "name")
    assert records.stdout.strip(), "helm's release record, written as the deployer"

    # The runner's own ServiceAccount may do nothing there: without DEPLOYER helm is refused.
    app.push({"README.md": "next"})
    alone = {**as_service_account(app, tmp_path), "DEPLOYER": ""}
    done = app.run(**alone)
    assert done.code == 1, done.output
    account = f"system:serviceaccount:{app.cicd}:{SERVICE_ACCOUNT}"
    assert f'User "{account}" cannot' in done.stderr, done.stderr
    assert app.heads[-1] not in app.deployed_image()


LOOKUP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: loot}
data:
  stolen: {{ (lookup "v1" "Secret" "CICD" "billing-git-token").data | toJson | quote }}
  listed: {{ (lookup "v1" "Secret" "CICD" "").items | toJson | quote }}
"""


def test_a_chart_that_looks_up_another_apps_secret_gets_nothing(
    installed: App, tmp_path: Path
) -> None:
    app = installed
    chart = LOOKUP.replace("CICD", app.cicd)
    app.push({"deploy/chart/templates/loot.yaml": chart}, message="steal a token")
    done = app.run(**as_service_account(app, tmp_path))
    assert leaked(app, done.output) == []
    # helm's lookup passes a forbidden error on (only NotFound is an empty answer): the render
    # fails, the commit's failure, exit 1.
    assert done.code == 1, done.output
    assert "forbidden" in done.stderr.lower(), done.stderr
    assert f'User "system:serviceaccount:{app.deploy_ns}:{DEPLOYER}"' in done.stderr


JOB = """\
apiVersion: batch/v1
kind: Job
metadata: {name: escape, namespace: CICD}
spec:
  template:
    spec:
      serviceAccountName: SA
      restartPolicy: Never
      containers: [{name: x, image: busybox, command: ["true"]}]
"""


def test_a_chart_that_creates_a_job_in_the_cicd_namespace_is_refused(
    installed: App, tmp_path: Path
) -> None:
    app = installed
    job = JOB.replace("CICD", app.cicd).replace("SA", SERVICE_ACCOUNT)
    app.push({"deploy/chart/templates/escape.yaml": job}, message="run as the runner")
    done = app.run(**as_service_account(app, tmp_path))
    assert done.code == 1, done.output
    assert "forbidden" in done.stderr.lower(), done.stderr
    found = kubectl(app, "get", "job", "escape", "-n", app.cicd, check=False)
    assert found.returncode != 0 and "NotFound" in found.stderr, found.stdout


@pytest.mark.parametrize(
    "who",
    [
        "DEPLOY_NS:default",  # another ServiceAccount of the deploy namespace
        "CICD:SA",  # the runner itself, by way of impersonation
        "CICD:default",
    ],
)
def test_the_runner_may_act_as_no_one_but_its_deployer(
    installed: App, tmp_path: Path, who: str
) -> None:
    app = installed
    namespace, name = who.replace("DEPLOY_NS", app.deploy_ns).replace("CICD", app.cicd).split(":")
    name = name.replace("SA", SERVICE_ACCOUNT)
    env = as_service_account(app, tmp_path)
    as_runner = {**app.env, "KUBECONFIG": env["KUBECONFIG"]}
    account = f"system:serviceaccount:{namespace}:{name}"
    for extra in ([], ["--as-group", "system:masters"]):
        done = subprocess.run(
            ["kubectl", "get", "configmaps", "-n", namespace, "--as", account, *extra],
            env=as_runner, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode != 0, done.stdout
        assert "cannot impersonate" in done.stderr, done.stderr
    # Its own deployer, but claiming more groups: refused too (impersonate on groups).
    deployer = f"system:serviceaccount:{app.deploy_ns}:{DEPLOYER}"
    done = subprocess.run(
        ["kubectl", "get", "configmaps", "-n", app.deploy_ns, "--as", deployer,
         "--as-group", "system:masters"],
        env=as_runner, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert 'cannot impersonate resource "groups"' in done.stderr, done.stderr

    if namespace == app.deploy_ns:  # and a run told to act as it: exit 2, nothing deployed
        run = app.run(**{**env, "DEPLOYER": name})
        assert run.code == 2, run.output
        assert f"helm may not act as DEPLOYER {account}" in run.stderr, run.stderr
        assert app.status()["lastDeployedSha"] is None
