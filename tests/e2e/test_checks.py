"""``ci-runner run`` end to end with REQUIRE_CHECKS: a new head is built only once GitHub
reports its checks passed (the GitHub fake serves check runs and combined statuses)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.appkit import IMAGE, REPO, App

WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def test_a_head_whose_checks_run_is_not_built_and_waiting_costs_two_free_requests(
    app: App, emulator: Any
) -> None:
    sha = app.heads[0]
    app.github.add_check_run(REPO, sha, "test", "in_progress", None)
    waiting = app.run(REQUIRE_CHECKS="test,ci/lint")
    assert waiting.code == 0, waiting.output
    assert f"{sha[:7]} is not built yet: waiting for test to finish and ci/lint to report" in (
        waiting.stderr
    )
    assert app.build_jobs() == []
    status = app.status()
    assert (status["attempts"], status["pendingSha"], status["lastDeployedSha"]) == (0, None, None)
    assert status["waitingForChecks"] == sha
    assert status["next"] == f"build {sha[:7]} once its required checks pass (REQUIRE_CHECKS)"
    assert app.github.statuses(REPO, sha) == []  # nothing posted: no attempt began

    # The next run while nothing changed: the head and the two lists, all three 304 (free),
    # and nothing written to the cluster.
    emulator.clear_requests()
    calls, remaining = len(app.github.requests), app.github.rate_limit_remaining
    again = app.run(REQUIRE_CHECKS="test,ci/lint")
    assert again.code == 0, again.output
    asked = app.github.requests[calls:]
    assert [r.status for r in asked] == [304, 304, 304], asked
    assert sum("/check-runs" in r.path or r.path.endswith("/status") for r in asked) == 2
    assert app.github.rate_limit_remaining == remaining
    assert not [r for r in emulator.requests if r.verb in WRITES]


@pytest.mark.helm
def test_a_head_whose_required_checks_passed_is_built_and_deployed(app: App) -> None:
    sha = app.heads[0]
    app.github.add_check_run(REPO, sha, "test", "in_progress", None)
    app.github.add_status(REPO, sha, "ci/lint", "pending")
    assert app.run(REQUIRE_CHECKS="test,ci/lint").code == 0
    assert app.build_jobs() == []
    app.github.add_check_run(REPO, sha, "test", "completed", "success")
    app.github.add_status(REPO, sha, "ci/lint", "success")
    # An unrequired check failing does not matter, nor does the runner's own context.
    app.github.add_check_run(REPO, sha, "flaky-benchmark", "completed", "failure")
    app.github.add_status(REPO, sha, "ci-runner/shop", "failure")
    done = app.run(REQUIRE_CHECKS="test,ci/lint")
    assert done.code == 0, done.output
    assert "required check(s) passed: ci/lint, test" in done.stderr
    assert app.deployed_image() == f"{IMAGE}:{sha}"
    assert app.status()["waitingForChecks"] is None


def test_a_head_whose_required_check_failed_is_skipped_and_status_says_why(
    app: App, emulator: Any
) -> None:
    sha = app.heads[0]
    app.github.add_check_run(REPO, sha, "test", "completed", "failure")
    app.github.add_check_run(REPO, sha, "lint", "in_progress", None)
    done = app.run(REQUIRE_CHECKS="all")
    assert done.code == 0, done.output
    assert f"skipped {sha[:7]} (required check(s) failed: test (failure))" in done.stderr
    assert app.build_jobs() == []
    status = app.status()
    assert (status["lastSkippedSha"], status["attempts"]) == (sha, 0)
    assert "required check(s) failed: test (failure)" in status["lastSkippedReason"]
    assert "run --force" in status["lastSkippedReason"]
    shown = app.cli("status")
    assert "test (failure)" in shown.stdout, shown.output
    # Later runs: nothing asked of the checks, nothing written.
    emulator.clear_requests()
    calls = len(app.github.requests)
    again = app.run(REQUIRE_CHECKS="all")
    assert again.code == 0 and "was skipped" in again.stderr, again.output
    assert [r.status for r in app.github.requests[calls:]] == [304]
    assert not [r for r in emulator.requests if r.verb in WRITES]


def test_a_dry_run_says_what_it_waits_for_and_writes_nothing(app: App, emulator: Any) -> None:
    emulator.clear_requests()
    done = app.run("--dry-run", REQUIRE_CHECKS="test")
    assert done.code == 0, done.output
    assert "waiting for test to report" in done.stdout
    assert "dry run: nothing was written" in done.stdout
    assert not [r for r in emulator.requests if r.verb in WRITES]


def test_checks_github_refuses_to_show_are_a_configuration_error(app: App) -> None:
    app.github.refuse("checks")
    done = app.run(REQUIRE_CHECKS="test")
    assert done.code == 2, done.output
    assert "checks: read" in done.stderr
    assert app.build_jobs() == []
    assert app.status()["attempts"] == 0
