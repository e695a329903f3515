"""The cycle's decision, as a pure function of (head, state, settings)."""

from __future__ import annotations

import pytest
from ci_runner.kube.state import Deployed, State
from ci_runner.run.plan import Action, Verdict, decide, gate, pinned, rollback_target

A = "a" * 40
B = "b" * 40


def test_first_run_builds_and_deploys() -> None:
    plan = decide(A, State(), max_attempts=3)
    assert (plan.action, plan.attempt) == (Action.BUILD_AND_DEPLOY, 1)


def test_deployed_head_is_nothing_to_do() -> None:
    assert decide(A, State(deployed_sha=A), 3).action is Action.NOTHING


def test_new_commit_after_a_deploy_builds() -> None:
    assert decide(B, State(deployed_sha=A), 3).action is Action.BUILD_AND_DEPLOY


def test_attempts_count_up_to_giving_up() -> None:
    assert decide(B, State(pending_sha=B, attempts=2), 3).attempt == 3
    given_up = decide(B, State(pending_sha=B, attempts=3, last_error="boom"), 3)
    assert given_up.action is Action.GIVEN_UP
    assert "boom" in given_up.reason


def test_attempts_on_another_commit_do_not_count() -> None:
    assert decide(B, State(pending_sha=A, attempts=3), 3).action is Action.BUILD_AND_DEPLOY


def test_retry_after_a_failed_deploy_does_not_rebuild() -> None:
    plan = decide(B, State(pending_sha=B, attempts=1, built_sha=B), 3)
    assert (plan.action, plan.attempt) == (Action.DEPLOY, 2)


def test_retry_without_rebuild_deploys_the_recorded_digest() -> None:
    digest = "sha256:" + "1" * 64
    plan = decide(B, State(pending_sha=B, attempts=1, built_sha=B, built_digest=digest), 3)
    assert (plan.action, plan.digest) == (Action.DEPLOY, digest)
    assert decide(A, State(built_sha=B, built_digest=digest), 3).digest is None


def test_force_overrides_deployed_and_given_up() -> None:
    assert decide(A, State(deployed_sha=A), 3, force=True).action is Action.BUILD_AND_DEPLOY
    assert decide(B, State(pending_sha=B, attempts=3), 3, force=True).acts


def test_a_skipped_head_is_nothing_to_do_until_forced_or_a_new_commit() -> None:
    state = State(deployed_sha=A, skipped_sha=B)
    plan = decide(B, state, 3)
    assert plan.action is Action.NOTHING
    assert "was skipped" in plan.reason
    assert decide(B, state, 3, force=True).action is Action.BUILD_AND_DEPLOY
    assert decide("c" * 40, state, 3).action is Action.BUILD_AND_DEPLOY


def test_a_pinned_state_says_what_is_pinned_since_when_and_how_to_unpin() -> None:
    assert pinned(State()) is None
    said = pinned(State(pinned_sha="a" * 40, pinned_at="2026-12-07T10:00:00+00:00"))
    assert said is not None
    assert said.startswith("pinned at aaaaaaa since 2026-12-07T10:00:00+00:00")
    assert "`ci-runner unpin`" in said


def test_the_rollback_target_is_the_one_before_or_the_named_one() -> None:
    state = State(history=(Deployed(B, "t2", 2, None), Deployed(A, "t1", 1, None)))
    assert rollback_target(state, None).sha == A
    assert rollback_target(state, B[:7]).sha == B
    for to, says in [("abc", "at least 7"), ("c" * 7, "no such deploy")]:
        with pytest.raises(ValueError, match=says):
            rollback_target(state, to)
    with pytest.raises(ValueError, match="no earlier deploy"):
        rollback_target(State(history=state.history[:1]), None)


# -- REQUIRE_CHECKS ------------------------------------------------------------------------------

OWN = "ci-runner/app"


@pytest.mark.parametrize(
    ("required", "runs", "statuses", "verdict", "said"),
    [
        (("test",), [("test", "success")], [], Verdict.PASS, "passed: test"),
        (("test",), [("test", "neutral"), ("test", "skipped")], [], Verdict.PASS, "test"),
        (("test",), [("test", "pending")], [], Verdict.WAIT, "test to finish"),
        (("test",), [], [], Verdict.WAIT, "test to report"),
        (("test", "ci/x"), [("test", "success")], [], Verdict.WAIT, "ci/x to report"),
        (("test",), [("test", "timed_out")], [], Verdict.FAIL, "test (timed_out)"),
        # A name reported as a check run and as a status: both must pass (as GitHub requires).
        (("test",), [("test", "success")], [("test", "pending")], Verdict.WAIT, "test"),
        (("test",), [("test", "success")], [("test", "error")], Verdict.FAIL, "test (error)"),
        # A failure decides even while another required check is still running.
        (("a", "b"), [("a", "pending"), ("b", "cancelled")], [], Verdict.FAIL, "b (cancelled)"),
        # Unrequired checks do not count.
        (("a",), [("a", "success"), ("b", "failure")], [], Verdict.PASS, "a"),
        (("all",), [("a", "success"), ("b", "failure")], [], Verdict.FAIL, "b (failure)"),
        (("all",), [("a", "success")], [("ci/x", "success")], Verdict.PASS, "a, ci/x"),
        (("all",), [], [], Verdict.WAIT, "none has reported yet"),
        # The runner's own status never counts: it is pending while the runner builds.
        (("all",), [("a", "success")], [(OWN, "pending")], Verdict.PASS, "a"),
        (("all",), [], [(OWN, "failure")], Verdict.WAIT, "none has reported"),
    ],
)
def test_the_gate_passes_waits_or_fails_as_required_checks_do(
    required: tuple[str, ...],
    runs: list[tuple[str, str]],
    statuses: list[tuple[str, str]],
    verdict: Verdict,
    said: str,
) -> None:
    decided = gate(required, runs, statuses, OWN)
    assert decided.verdict is verdict
    assert said in decided.reason


def test_drift_is_a_revision_or_install_that_is_not_the_recorded_deploy() -> None:
    from ci_runner.run.plan import drift

    state = State(deployed_sha=A, revision=4)
    assert drift(state, "web/shop", 4, "deployed", True) is None
    assert drift(State(), "web/shop", 1, "deployed", False) is None  # nothing recorded
    by_hand = drift(state, "web/shop", 5, "deployed", False)
    assert by_hand is not None and "revision 5 (deployed)" in by_hand
    assert "no longer name aaaaaaa" in by_hand and "rollback --to aaaaaaa" in by_hand
    assert "no longer name" not in (drift(state, "web/shop", 5, "failed", True) or "")
    assert "is not installed" in (drift(state, "web/shop", None, None, False) or "")
