"""The chart's ValidatingAdmissionPolicy in fleet mode, on a real API server (admission is not
emulated): the fleet's ServiceAccount creates the apps' own Jobs and nothing else."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from tests.e2e.test_fleet import Fleet, fleet  # noqa: F401  # the fixture, on a real cluster

pytestmark = pytest.mark.helm


def create_as_fleet(it: Fleet, body: dict[str, Any], *more: str) -> tuple[int, str]:
    path = it.tmp / f"{body['metadata']['name']}.json"
    path.write_text(json.dumps(body))
    done = it.kubectl("create", "-f", str(path), "--kubeconfig", it.as_account("ci-fleet"),
                      *more, check=False)  # fmt: skip
    return done.returncode, done.stderr


def wait_until_in_force(it: Fleet, refused: dict[str, Any]) -> None:
    """The API server loads a new policy from its informer, a moment after helm created it
    ("policy changes take effect asynchronously"): until then a Job it refuses is admitted.
    Asked with a server-side dry run, which passes admission and keeps nothing."""
    deadline = time.monotonic() + 60
    while create_as_fleet(it, refused, "--dry-run=server")[0] == 0:  # a condition, polled
        assert time.monotonic() < deadline, "the admission policy never took effect"
        time.sleep(0.2)


def test_the_fleet_may_create_only_the_apps_own_jobs(fleet: Fleet) -> None:  # noqa: F811
    if fleet.kube.emulator is not None:
        pytest.skip("admission policies need a real API server: run bash scripts/e2e-real.sh")
    made = fleet.kubectl("create", "job", "ci-shop-own", "--from=cronjob/ci-shop",
                         "-n", fleet.cicd, "--dry-run=client", "-o", "json").stdout  # fmt: skip
    own = json.loads(made)
    own["spec"]["suspend"] = True  # kwok would run it otherwise; nothing here needs it to

    def changed(name: str, change: Any) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(own)
        body["metadata"]["name"] = name
        change(body["spec"]["template"]["spec"])
        return body

    def container(pod: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = pod["containers"][0]
        return found

    refused = {
        "another-image": (
            changed("x-image", lambda pod: container(pod).update(image="busybox")),
            "runner's image",
        ),
        "another-command": (
            changed("x-command", lambda pod: container(pod).update(command=["sh", "-c", "id"])),
            "runner's image",
        ),
        "fleet-args": (
            changed("x-args", lambda pod: container(pod).update(args=["fleet"])),
            "runner's image",
        ),
        "another-account": (
            changed("x-account", lambda pod: pod.update(serviceAccountName="ci-fleet")),
            "apps' ServiceAccounts",
        ),
        "another-apps-account": (
            changed("x-cart", lambda pod: pod.update(serviceAccountName="ci-cart")),
            "app's own environment",
        ),
        "another-environment": (
            changed(
                "x-env",
                lambda pod: container(pod)["env"].append({"name": "NOTIFY_URL", "value": "x"}),
            ),
            "app's own environment",
        ),
    }
    wait_until_in_force(fleet, refused["another-image"][0])
    code, said = create_as_fleet(fleet, own)  # the app's own Job, under the policy
    assert code == 0, said
    for what, (body, words) in refused.items():
        code, said = create_as_fleet(fleet, body)
        assert code != 0, f"{what} was admitted"
        assert "ValidatingAdmissionPolicy" in said and words in said, (what, said)
    # an admin is not the fleet: the policy leaves other identities alone
    admin = changed("admin-own", lambda pod: container(pod).update(args=["status"]))
    admin["spec"]["suspend"] = True
    path = fleet.tmp / "admin.json"
    path.write_text(json.dumps(admin))
    fleet.kubectl("create", "-f", str(path))
