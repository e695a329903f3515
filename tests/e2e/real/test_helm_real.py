"""helm against a real API server: readiness, rollback of a release that never gets ready, the
recovery of a release a killed helm left pending, and helm 4's server-side apply meeting a field
another manager owns."""

from __future__ import annotations

import json

import pytest

from tests.e2e.appkit import RELEASE, App
from tests.e2e.real.realkit import (
    NEVER_READY,
    ONE_REPLICA,
    TEMPLATE,
    kubectl,
    require_kwok,
    wait_for_pending_upgrade,
)

pytestmark = pytest.mark.helm


def ready_replicas(app: App) -> int:
    found = json.loads(
        kubectl(app, "get", "deployment", RELEASE, "-n", app.deploy_ns, "-o", "json").stdout
    )
    return int(found["status"].get("readyReplicas") or 0)


def test_a_deploy_waits_until_its_pods_are_ready(app: App) -> None:
    require_kwok(app)
    app.push({TEMPLATE: ONE_REPLICA})
    done = app.run()
    assert done.code == 0, done.output
    assert ready_replicas(app) == 1  # helm --wait returned only once kwok's pod was Ready
    (release,) = app.helm("list")
    assert release["status"] == "deployed"


def test_a_release_that_never_gets_ready_is_rolled_back(app: App) -> None:
    require_kwok(app)
    app.push({TEMPLATE: ONE_REPLICA})
    assert app.run().code == 0
    good = app.deployed_image()
    bad = app.push({TEMPLATE: NEVER_READY}, message="never ready")
    done = app.run(HELM_TIMEOUT="10")
    assert done.code == 1, done.output
    assert app.deployed_image() == good
    history = app.helm("history", RELEASE)
    assert history[-1]["status"] == "deployed"
    assert "Rollback" in history[-1]["description"]
    assert app.status()["lastDeployedSha"] != bad


def test_a_release_left_pending_by_a_killed_run_is_recovered(app: App) -> None:
    require_kwok(app)
    app.push({TEMPLATE: ONE_REPLICA})
    assert app.run().code == 0
    app.push({TEMPLATE: NEVER_READY}, message="never ready")
    process = app.start(HELM_TIMEOUT="300")
    wait_for_pending_upgrade(app)
    app.kill_like_a_node_loss(process)
    app.expire_lease()

    fixed = app.push({TEMPLATE: ONE_REPLICA}, message="fixed")
    done = app.run()
    assert done.code == 0, done.output
    assert fixed in app.deployed_image()
    # helm's rollback leaves the killed revision marked pending-upgrade in the history (it
    # supersedes only deployed revisions); what counts is that the release is usable again.
    history = app.helm("history", RELEASE)
    assert history[-1]["status"] == "deployed"
    assert "Rollback" in history[-2]["description"]


def test_replicas_scaled_by_another_manager_between_two_deploys(app: App, helm_major: int) -> None:
    """``kubectl scale`` owns spec.replicas now (its field manager). helm 3 (client-side, a
    three-way merge) deploys the next commit and leaves the scale alone. helm 4's server-side
    apply is refused, and so is its rollback: "Apply failed with 1 conflict: conflict with
    "kubectl" with subresource "scale" using apps/v1: .spec.replicas". By default (the safe
    side: the runner does not silently undo another writer's scale) that deploy fails and says
    what to do; with HELM_FORCE_CONFLICTS=true helm 4 takes the field back and deploys."""
    require_kwok(app)
    app.push({TEMPLATE: ONE_REPLICA})
    assert app.run().code == 0
    kubectl(app, "scale", "deployment", RELEASE, "-n", app.deploy_ns, "--replicas", "2")
    sha = app.push({"README.md": "next"})
    done = app.run()
    if helm_major == 4:
        assert done.code == 1, done.output
        assert "HELM_FORCE_CONFLICTS=true" in done.stderr
        assert ".spec.replicas" in done.stderr
        done = app.run(HELM_FORCE_CONFLICTS="true")
    assert done.code == 0, done.output
    assert sha in app.deployed_image()
    assert app.status()["lastDeployedSha"] == sha
