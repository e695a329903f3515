"""End-to-end fixtures: the app under test, and the RBAC check every test ends with."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.e2e.appkit import APP_FILES, RELEASE, REPO, App, runner_env
from tests.support import charts, rbac, rbac_exact
from tests.support.github_fake import GitHubFake
from tests.support.kube_target import KubeTarget

# Who the runner is in the emulator's request log: its own client, and the helm it runs
# (helm 3.18 and 4.1 send "Helm/<version>": compared in lower case).
RUNNER_AGENTS = ("ci-runner/", "helm/")
TOKEN_COPY = f"ci-runner-{RELEASE}-git"
"""The Secret where the runner keeps the token for Kaniko."""


@pytest.fixture(scope="session")
def runner_rbac(helm_bin: str, kubectl_bin: str) -> list[rbac.Granted]:
    """What the chart (the tests' app, with its Secrets) and the plain manifests grant the
    runner's ServiceAccount. The manifests name the Secrets after their own RELEASE and
    examples: the tests' names are checked as theirs."""
    chart = charts.render_chart([charts.values_file("e2e-app")], namespace="cicd", helm=helm_bin)
    manifests = charts.render_manifests(kubectl=kubectl_bin)
    as_manifests = {
        TOKEN_COPY: "ci-runner-example-app-git",
        "registry-push": "registry-credentials",
        "ci-shop-deployer": "ci-runner-deployer",  # DEPLOYER, in tests/e2e/test_deployer.py
    }
    return [
        rbac.Granted.from_documents("the chart", chart, "cicd"),
        rbac.Granted.from_documents("the manifests", manifests, "cicd", as_manifests),
    ]


@pytest.fixture
def app(
    kube: KubeTarget,
    github: GitHubFake,
    tools_path: str,
    tmp_path: Path,
    runner_rbac: list[rbac.Granted],
) -> Iterator[App]:
    """An app repository with a Dockerfile and a chart, and the runner's settings for it.

    On the emulator, every request the runner (and its helm) made during the test must be
    allowed by the Roles the chart and the manifests render: RBAC covers the runner.
    """
    github.create_repo(REPO)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **runner_env(kube, github.url, tools_path, home),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    if kube.emulator is None:
        env["KANIKO_IMAGE"] = os.environ.get("CI_RUNNER_TEST_BUILD_IMAGE", "hello-world")
    the_app = App(kube, github, env, home)
    the_app.push(APP_FILES, message="first")
    # As the chart and the manifests do: the runner may update its token copy, never create it.
    with the_app.api() as api:
        client.CoreV1Api(api).create_namespaced_secret(
            kube.namespace, {"metadata": {"name": TOKEN_COPY}, "type": "Opaque"}
        )
    yield the_app
    for process in the_app.started:  # a test that failed midway leaves no run (or pipe) behind
        if process.poll() is None:
            process.kill()
        process.communicate()
    if kube.emulator is not None:
        ours = [r for r in kube.emulator.requests if r.user_agent.lower().startswith(RUNNER_AGENTS)]
        refused = [
            line
            for granted in runner_rbac
            for line in rbac.refused(ours, granted, env["CICD_NS"], env["DEPLOY_NS"])
        ]
        assert not refused, "the runner used what RBAC does not grant:\n" + "\n".join(refused)
        if os.environ.get("CI_RUNNER_RBAC_USAGE"):  # and what is granted must be used
            rbac_exact.record(os.environ["CI_RUNNER_RBAC_USAGE"], ours, env["CICD_NS"])
    if kube.emulator is None:  # a real cluster: remove what helm created
        subprocess.run(
            ["kubectl", "delete", "namespace", env["DEPLOY_NS"], "--wait=false"],
            env=env,
            check=False,
            capture_output=True,
        )
