"""The way back: ``ci-runner rollback`` redeploys a recorded deploy with its own chart and
image, without a build, pins the release there, and says so to GitHub and in an Event."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from tests.e2e.appkit import IMAGE, REPO, App

pytestmark = pytest.mark.helm
TOKEN = "ghp_" + "r" * 36


def history(app: App) -> list[dict[str, object]]:
    done = app.cli("history", "--output", "json")
    assert done.code == 0, done.output
    deploys: list[dict[str, object]] = json.loads(done.stdout)
    return deploys


def test_rollback_redeploys_the_one_before_without_a_build_and_pins_it(app: App) -> None:
    app.github.require_token(TOKEN)
    app.env["GIT_TOKEN"] = TOKEN
    good = app.heads[0]
    assert app.run().code == 0
    bad = app.push({"deploy/chart/values.yaml": "image: {repository: nginx, tag: bad}\n"})
    assert app.run().code == 0
    builds = len(app.build_jobs())

    done = app.cli("rollback")
    assert done.code == 0, done.output
    assert f"rolled back to {good[:7]}" in done.stderr and "`ci-runner unpin`" in done.stderr
    assert app.deployed_image() == f"{IMAGE}:{good}"  # its own chart and image, no build
    assert len(app.build_jobs()) == builds
    assert [(d["sha"], d["how"]) for d in history(app)][:2] == [(good, "rollback"), (bad, "build")]
    status = app.status()
    assert (status["lastDeployedSha"], status["phase"], status["pinnedSha"]) == (
        good,
        "pinned",
        good,
    )
    posted = app.github.statuses(REPO, good)
    assert posted[-1]["state"] == "success"
    with app.api() as api:
        reasons = [e.reason for e in client.CoreV1Api(api).list_namespaced_event(app.cicd).items]
    assert "RolledBack" in reasons

    assert app.run().code == 0  # pinned: the bad head stays out
    assert app.deployed_image() == f"{IMAGE}:{good}"


def test_rollback_to_a_named_commit_and_to_one_never_deployed(app: App) -> None:
    first = app.heads[0]
    assert app.run().code == 0
    app.push({"README.md": "2"})
    assert app.run().code == 0
    app.push({"README.md": "3"})
    assert app.run().code == 0
    before = app.state()

    refused = app.cli("rollback", "--to", "1234567")
    assert refused.code == 2, refused.output
    assert "--to 1234567: no such deploy in the history" in refused.stderr
    assert app.state() == before  # nothing changed

    done = app.cli("rollback", "--to", first[:7])
    assert done.code == 0, done.output
    assert app.deployed_image() == f"{IMAGE}:{first}"


def test_rollback_with_nothing_earlier_is_exit_2(app: App) -> None:
    assert app.run().code == 0
    done = app.cli("rollback")
    assert done.code == 2, done.output
    assert "no earlier deploy is recorded to roll back to" in done.stderr
