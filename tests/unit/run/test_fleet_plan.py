"""The fleet's decision per app: a Job exactly when the app's own run would act, never while a
Job of the app runs or while it is pinned."""

from __future__ import annotations

import pytest
from ci_runner.kube.state import State
from ci_runner.run.plan import fleet_call

A = "a" * 40
B = "b" * 40
C = "c" * 40


@pytest.mark.parametrize(
    ("head", "state", "job", "words"),
    [
        (A, State(), True, "new head aaaaaaa (deployed: nothing)"),
        (B, State(deployed_sha=A), True, "new head bbbbbbb (deployed: aaaaaaa)"),
        (A, State(deployed_sha=A), False, "already deployed"),
        (B, State(deployed_sha=A, skipped_sha=B), False, "was skipped"),
        (C, State(deployed_sha=A, skipped_sha=B), True, "after skipped bbbbbbb"),
        (
            B,
            State(deployed_sha=A, pending_sha=B, attempts=1),
            True,
            "retry bbbbbbb (attempt 2 of 3)",
        ),
        (B, State(deployed_sha=A, pending_sha=B, attempts=3), False, "gave up"),
        (C, State(deployed_sha=A, pending_sha=B, attempts=3), True, "new head ccccccc"),
        (B, State(deployed_sha=A, built_sha=B), True, "image is already built"),
        (B, State(deployed_sha=A, pinned_sha=A), False, "pinned at aaaaaaa"),
    ],
)
def test_a_job_exactly_when_the_apps_own_run_would_act(
    head: str, state: State, job: bool, words: str
) -> None:
    call = fleet_call(head, state, 3, None)
    assert call.job is job
    assert words in call.reason


def test_never_a_second_job_while_one_runs() -> None:
    call = fleet_call(B, State(deployed_sha=A), 3, "ci-web-f1")
    assert (call.job, call.reason) == (False, "Job ci-web-f1 is still running")
