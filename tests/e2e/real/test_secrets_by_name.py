"""Secrets by name (issue 17), decided by the real RBAC authorizer: the chart's runner reads and
updates only its own app's Secrets, creates none, and keeps its token in the copy the chart
made."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.e2e.appkit import RELEASE, App
from tests.e2e.real.realkit import (
    as_service_account,
    install_chart,
    kubectl,
    require_real,
    secret_data,
)
from tests.support.appkeys import public_pem, rsa_pem

pytestmark = pytest.mark.helm

COPY = f"ci-runner-{RELEASE}-git"
SECRETS = {"githubAppSecret": "shop-github-app", "registrySecret": "registry-push"}


def make_secret(app: App, name: str, data: dict[str, str], kind: str = "Opaque") -> None:
    """A Secret in the CICD namespace, made by the cluster's admin."""
    body = {"type": kind, "metadata": {"name": name}, "stringData": data}
    with app.api() as api:
        client.CoreV1Api(api).create_namespaced_secret(app.cicd, body)


def status_of(call: object) -> int:
    """The HTTP status a Kubernetes client call got (200 when it went through)."""
    try:
        call()  # type: ignore[operator]
    except client.ApiException as e:
        return int(e.status)
    return 200


@pytest.fixture
def chart_with_secrets(app: App, helm_bin: str, tmp_path: Path) -> App:
    """The chart for an app with a GitHub App and a registry Secret, and another app's token
    Secret beside it in the CICD namespace."""
    require_real(app)
    kubectl(app, "delete", "secret", COPY, "--namespace", app.cicd)  # the chart makes its own
    install_chart(app, helm_bin, tmp_path, secrets=SECRETS)
    config_json = {"auths": {"r.example.com": {"username": "robot", "password": "push-pass-42"}}}
    make_secret(
        app,
        "registry-push",
        {".dockerconfigjson": json.dumps(config_json)},
        "kubernetes.io/dockerconfigjson",
    )
    make_secret(app, "billing-git-token", {"token": "fake-other-apps-token-0123456789"})
    return app


def test_the_runner_reads_and_updates_only_its_own_secrets_and_creates_none(
    chart_with_secrets: App, tmp_path: Path
) -> None:
    app = chart_with_secrets
    assert secret_data(app, COPY, app.cicd) == {}  # the chart made it empty
    runner = config.new_client_from_config(as_service_account(app, tmp_path)["KUBECONFIG"])
    with runner as api:
        core = client.CoreV1Api(api)
        ns = app.cicd
        assert status_of(lambda: core.read_namespaced_secret(COPY, ns)) == 200
        assert status_of(lambda: core.read_namespaced_secret("registry-push", ns)) == 200
        # Another app's token, or the GitHub App's key the kubelet hands the runner's pod.
        assert status_of(lambda: core.read_namespaced_secret("billing-git-token", ns)) == 403
        assert status_of(lambda: core.read_namespaced_secret("shop-github-app", ns)) == 403
        assert status_of(lambda: core.list_namespaced_secret(ns)) == 403
        made = {"metadata": {"name": "ci-runner-evil-git"}, "stringData": {"token": "x"}}
        assert status_of(lambda: core.create_namespaced_secret(ns, made)) == 403
        mine = core.read_namespaced_secret(COPY, ns)
        mine.string_data = {"token": "fake-kept-token-0123456789"}
        assert status_of(lambda: core.replace_namespaced_secret(COPY, ns, mine)) == 200
        theirs = {"metadata": {"name": "billing-git-token"}, "stringData": {"token": "mine-now"}}
        assert (
            status_of(lambda: core.replace_namespaced_secret("billing-git-token", ns, theirs))
            == 403
        )


def test_a_run_as_the_runner_keeps_the_installation_token_in_the_charts_copy(
    chart_with_secrets: App, tmp_path: Path
) -> None:
    app = chart_with_secrets
    key = rsa_pem()
    app.github.register_app("4242", public_pem(key), 77)
    app.github.require_token("only-installation-tokens-get-in")
    env = {
        **as_service_account(app, tmp_path),
        "GITHUB_APP_ID": "4242",
        "GITHUB_APP_INSTALLATION_ID": "77",
        "GITHUB_APP_PRIVATE_KEY": key,
        "REGISTRY_SECRET": "registry-push",
    }
    done = app.run(**env)
    assert done.code == 0, done.output
    (token,) = app.github.app_tokens
    assert secret_data(app, COPY, app.cicd) == {"token": token}
    kept = json.loads(kubectl(app, "get", "secret", COPY, "-n", app.cicd, "-o", "json").stdout)
    assert kept["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"  # still helm's
    assert base64.b64decode(kept["data"]["token"]).decode() == token
