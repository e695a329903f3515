"""The API server itself goes away mid-deploy, and other writers act between a run's reads and
writes. The tests marked ``disruptive`` kill the shared kube-apiserver: scripts/e2e-real.sh
runs them on their own, after the rest."""

from __future__ import annotations

import os
import signal
import time

import pytest
from kubernetes import client, watch

from tests.e2e.appkit import RELEASE, REPO, App
from tests.e2e.real.realkit import (
    NEVER_READY,
    ONE_REPLICA,
    TEMPLATE,
    fate,
    kubectl,
    require_kwok,
    wait_for_pending_upgrade,
)

pytestmark = pytest.mark.helm
PLANE = os.environ.get("CI_RUNNER_TEST_PLANE_PID", "")


def wait_for_second_build(app: App) -> None:
    with app.api() as api:
        for event in watch.Watch().stream(
            client.BatchV1Api(api).list_namespaced_job, app.cicd, timeout_seconds=60
        ):
            if event["object"].metadata.name.endswith("-2"):  # <release>-build-<sha>-<attempt>
                return
    raise AssertionError("no second build Job")


def settled(app: App) -> None:
    """Block until the controllers and kwok work again after kube-apiserver came back (their
    watches reconnect with back-off): a Job's pod is made, run and, with the Job, deleted."""
    deadline = time.monotonic() + 120  # polling a condition with a deadline, as kubectl would
    while kubectl(app, "get", "--raw", "/readyz", check=False).returncode != 0:
        assert time.monotonic() < deadline, "kube-apiserver did not come back"
        time.sleep(0.5)
    probe = ["job", "settled", "-n", app.cicd]
    kubectl(app, "create", *probe, "--image=probe")
    kubectl(
        app, "wait", "--for=condition=complete", f"job/{probe[1]}", "-n", app.cicd, "--timeout=180s"
    )
    kubectl(app, "delete", *probe, "--cascade=foreground", "--wait=true", "--timeout=180s")


@pytest.mark.disruptive
def test_the_api_server_killed_and_restarted_mid_deploy(app: App) -> None:
    """kube-apiserver dies while helm waits: an outage, exit 3, no attempt counted and no failure
    status; once the server is back, the next run finishes the job."""
    require_kwok(app)
    if not PLANE:
        pytest.skip("needs the control plane of tests/cluster (it restarts kube-apiserver)")
    app.env["GIT_TOKEN"] = "fake-outage-token-0123456789"  # so that statuses are posted
    app.push({TEMPLATE: ONE_REPLICA})
    assert app.run().code == 0
    bad = app.push({TEMPLATE: NEVER_READY}, message="never ready")
    process = app.start(HELM_TIMEOUT="120")  # an outage must end it long before
    wait_for_pending_upgrade(app)
    os.kill(int(PLANE), signal.SIGUSR1)  # kube-apiserver SIGKILLed
    try:
        _, err = process.communicate(timeout=180)
    finally:
        os.kill(int(PLANE), signal.SIGUSR2)  # and started again
    settled(app)
    assert process.returncode == 3, err  # an outage, not the commit's failure
    assert "Traceback" not in err
    state = app.state()
    assert state is not None
    assert state["metadata"]["annotations"].get("ci-runner.io/attempts", "0") == "0"
    told = [s["state"] for s in app.github.statuses(REPO, bad)]
    assert "failure" not in told and "error" not in told, told

    fixed = app.push({TEMPLATE: ONE_REPLICA}, message="fixed")
    app.expire_lease()
    done = app.run()
    assert done.code == 0, done.output
    assert fixed in app.deployed_image()
    assert app.helm("history", RELEASE)[-1]["status"] == "deployed"


def test_a_concurrent_write_to_the_state_is_reread_not_overwritten(app: App) -> None:
    """Another writer (a person's ``kubectl annotate``) updates the state ConfigMap while the
    build runs: the runner's next write meets 409 Conflict, re-reads, keeps the other writer's
    change and counts the attempt once."""
    require_kwok(app)
    assert app.run(BUILD_POD=fate("fail")).code == 1  # the state exists, one attempt counted
    process = app.start(BUILD_POD=fate("hold"), BUILD_TIMEOUT="5")
    wait_for_second_build(app)
    kubectl(
        app,
        "annotate",
        "configmap",
        f"ci-runner-{RELEASE}",
        "-n",
        app.cicd,
        "team.example.com/note=looking into it",
        "--overwrite",
    )
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    state = app.state()
    assert state is not None
    annotations = state["metadata"]["annotations"]
    assert annotations["team.example.com/note"] == "looking into it"
    assert annotations["ci-runner.io/attempts"] == "2"


def test_a_lease_taken_over_by_another_run_stops_this_one_writing(app: App) -> None:
    """The Lease is taken by someone else while the build runs (this run's renewals failed, and
    it looked expired): this run must not deploy on top of the new holder."""
    require_kwok(app)
    process = app.start(BUILD_POD=fate("hold"), BUILD_TIMEOUT="8")
    app.wait_for_build_job()
    kubectl(
        app,
        "patch",
        "lease",
        f"ci-runner-{RELEASE}",
        "-n",
        app.cicd,
        "--type=merge",
        "-p",
        '{"spec":{"holderIdentity":"someone-else"}}',
    )
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0, err
    found = kubectl(app, "get", "deployment", RELEASE, "-n", app.deploy_ns, check=False)
    assert found.returncode != 0, "deployed though another run holds the Lease"
