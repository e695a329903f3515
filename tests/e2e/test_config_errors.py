"""Configuration errors are not commit failures: a forced run that fails on the deployed commit
counts nothing (exit 2), and a chart's template error is found before its build is paid for."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.appkit import BUILD, IMAGE, REPO, App

WRITES = {"create", "update", "patch", "delete", "deletecollection"}
BROKEN_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-broken}
data: {x: {{ .Values.no.such.value | quote }}}
"""


def assert_nothing_counted(app: App, before: dict[str, Any], posted: int, done: Any) -> None:
    sha = before["lastDeployedSha"]
    assert done.code == 2, done.output
    assert f"run --force on {sha[:7]}, the deployed commit, failed" in done.stderr
    assert "no attempt was counted" in done.stderr
    after = app.status()
    assert (after["phase"], after["attempts"], after["lastError"]) == ("deployed", 0, None)
    assert after["lastDeployedSha"] == sha
    assert after["revision"] == before["revision"]
    assert app.deployed_image().startswith(f"{IMAGE}:{sha}")
    states = [s["state"] for s in app.github.statuses(REPO, sha)[posted:]]
    assert "failure" not in states
    assert not states or states[-1] == "success"  # a pending one set back


@pytest.mark.helm
def test_a_forced_run_with_a_wrong_chart_path_on_the_deployed_commit_counts_nothing(
    app: App,
) -> None:
    assert app.run().code == 0
    before = app.status()
    posted = len(app.github.statuses(REPO, app.heads[0]))
    done = app.run("--force", CHART_PATH="no/such/chart")
    assert_nothing_counted(app, before, posted, done)


@pytest.mark.helm
def test_a_forced_run_whose_build_fails_on_the_deployed_commit_counts_nothing(
    app: App, emulator: Any
) -> None:
    assert app.run().code == 0
    before = app.status()
    posted = len(app.github.statuses(REPO, app.heads[0]))
    emulator.jobs.behave("fail", labels=BUILD, log="error pushing image: UNAUTHORIZED")
    done = app.run("--force")
    assert_nothing_counted(app, before, posted, done)


@pytest.mark.helm
def test_a_chart_that_helm_cannot_render_fails_the_attempt_before_any_build(
    app: App, emulator: Any
) -> None:
    assert app.run().code == 0
    sha = app.push({"deploy/chart/templates/broken.yaml": BROKEN_TEMPLATE})
    jobs = len(app.build_jobs())
    done = app.run()
    assert done.code == 1, done.output
    assert f"helm cannot render the chart deploy/chart of {REPO}@{sha[:7]}" in done.stderr
    assert "nil pointer" in done.stderr
    assert len(app.build_jobs()) == jobs  # no build paid for
    status = app.status()
    assert (status["pendingSha"], status["attempts"]) == (sha, 1)

    dry = app.run("--dry-run")
    assert dry.code == 2, dry.output  # what a run would refuse, refused now
    assert "helm cannot render the chart" in dry.stderr
