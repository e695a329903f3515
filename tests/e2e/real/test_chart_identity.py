"""The runner as the product chart's ServiceAccount, on a real API server: the real RBAC
authorizer enforces the chart's Roles, with a token from the TokenRequest API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.appkit import RELEASE, App
from tests.e2e.real.realkit import (
    SERVICE_ACCOUNT,
    as_service_account,
    install_chart,
    kubectl,
    replace_role,
    require_kwok,
    require_real,
    role,
)

pytestmark = pytest.mark.helm


def test_a_first_deploy_as_the_charts_service_account(
    app: App, helm_bin: str, tmp_path: Path
) -> None:
    require_real(app)
    install_chart(app, helm_bin, tmp_path)
    done = app.run(**as_service_account(app, tmp_path))
    assert done.code == 0, done.output
    assert app.status()["lastDeployedSha"] == app.heads[-1]
    assert app.heads[-1] in app.deployed_image()

    app.push({"README.md": "next"})  # and the next commit, as an upgrade
    done = app.run(**as_service_account(app, tmp_path))
    assert done.code == 0, done.output
    assert app.heads[-1] in app.deployed_image()


# (resource, verb, whether a deploy needs it only once a first run has left its Lease behind)
CICD_GRANTS = [
    ("configmaps", "get", False),
    ("configmaps", "create", False),
    ("configmaps", "update", False),
    ("leases", "get", False),
    ("leases", "create", False),
    ("leases", "update", True),  # a first run creates the Lease; the next ones take it over
    ("jobs", "create", False),
    ("jobs", "get", False),
]


def take_away(
    app: App, tmp_path: Path, role_name: str, namespace: str, resource: str, verb: str | None = None
) -> None:
    """Remove ``verb`` (every verb when None) on ``resource`` from a Role of the chart."""
    body = role(app, role_name, namespace)
    rules: list[dict[str, Any]] = body["rules"]
    for rule in rules:
        if resource in rule["resources"]:
            if verb is None:
                rule["resources"] = [r for r in rule["resources"] if r != resource]
            else:
                rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    body["rules"] = [r for r in rules if r["verbs"] and r["resources"]]
    replace_role(app, body, tmp_path)


@pytest.mark.parametrize(("resource", "verb", "later"), CICD_GRANTS)
def test_each_grant_a_deploy_needs_is_needed(
    app: App, helm_bin: str, tmp_path: Path, resource: str, verb: str, later: bool
) -> None:
    """Take one verb away from the chart's Role: the run fails at the step that needs it, says
    what it was doing and that it was forbidden, and does not deploy the commit."""
    require_kwok(app)
    install_chart(app, helm_bin, tmp_path)
    if later:
        assert app.run(**as_service_account(app, tmp_path)).code == 0
    head = app.push({"README.md": "next"})
    take_away(app, tmp_path, SERVICE_ACCOUNT, app.cicd, resource, verb)

    done = app.run(**as_service_account(app, tmp_path))
    assert done.code != 0, done.output
    assert "forbidden" in done.stderr.lower(), done.stderr
    assert resource.rstrip("s") in done.stderr.lower(), done.stderr
    deployed = kubectl(
        app, "get", "deployment", RELEASE, "-n", app.deploy_ns, "-o", "yaml", check=False
    ).stdout
    if (resource, verb) == ("configmaps", "update"):  # the record after helm: documented exit 3
        assert done.code == 3 and "but the state was not recorded" in done.stderr, done.stderr
    else:
        assert head not in deployed, "deployed without the grant"


@pytest.mark.parametrize("resource", ["secrets", "deployments", "services"])
def test_each_grant_helm_needs_in_the_deploy_namespace_is_needed(
    app: App, helm_bin: str, tmp_path: Path, resource: str
) -> None:
    """helm's grants in the deploy namespace: its release Secrets and the chart's kinds. Without
    one, the deploy fails as the commit's attempt, naming what was forbidden."""
    require_kwok(app)
    install_chart(app, helm_bin, tmp_path)
    take_away(app, tmp_path, f"{SERVICE_ACCOUNT}-deploy", app.deploy_ns, resource)
    done = app.run(**as_service_account(app, tmp_path))
    assert done.code == 1, done.output
    assert "forbidden" in done.stderr.lower(), done.stderr
    assert f'cannot create resource "{resource}"' in done.stderr or resource in done.stderr
    assert app.status()["lastDeployedSha"] is None


def test_a_manual_run_from_the_charts_cronjob_is_what_the_runner_needs(
    app: App, helm_bin: str, tmp_path: Path
) -> None:
    """``kubectl create job --from=cronjob/...``: the Job's pod runs as the app's
    ServiceAccount with the chart's security context and settings; the runner, run with that
    env and that ServiceAccount's token, deploys."""
    require_real(app)
    install_chart(app, helm_bin, tmp_path)
    kubectl(
        app,
        "create",
        "job",
        "--from",
        f"cronjob/{SERVICE_ACCOUNT}",
        "manual-1",
        "--namespace",
        app.cicd,
    )
    job = json.loads(
        kubectl(app, "get", "job", "manual-1", "--namespace", app.cicd, "-o", "json").stdout
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("CronJob", SERVICE_ACCOUNT)

    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    for name in ("REPO", "BRANCH", "IMAGE", "CHART_PATH", "RELEASE", "CICD_NS", "DEPLOY_NS"):
        assert name in env, f"the Job's pod has no {name}"
    assert env["DEPLOYER"] == f"{SERVICE_ACCOUNT}-deployer"  # helm acts as the deployer
    kubectl(app, "delete", "job", "manual-1", "--namespace", app.cicd)  # kwok would run it

    done = app.run(**{**env, **as_service_account(app, tmp_path)})
    assert done.code == 0, done.output
    assert app.heads[-1] in app.deployed_image()
