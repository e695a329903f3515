"""State transitions and their ConfigMap form: what a person reads with kubectl."""

from __future__ import annotations

from ci_runner.settings import load
from ci_runner.state import ATTEMPTS, PENDING_SHA, State, from_configmap, to_configmap
from kubernetes import client

A = "a" * 40
SETTINGS = load({"REPO": "o/r", "IMAGE": "r.io/o/r", "CHART_PATH": "c", "RELEASE": "r"})


def roundtrip(state: State) -> State:
    body = to_configmap(state, SETTINGS)
    meta = body["metadata"]
    cm = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            annotations=meta["annotations"], resource_version=meta["resourceVersion"]
        ),
        data=body["data"],
    )
    return from_configmap(cm)


def test_failures_count_and_success_clears() -> None:
    state = State().failed(A, "build failed").failed(A, "build failed again")
    assert (state.pending_sha, state.attempts, state.last_error) == (A, 2, "build failed again")
    done = state.deployed(A, "2026-11-25T00:00:00+00:00", 4)
    assert (done.deployed_sha, done.revision, done.attempts, done.pending_sha) == (A, 4, 0, None)


def test_a_built_image_survives_a_failed_deploy() -> None:
    state = State().built(A).failed(A, "helm failed")
    assert (state.built_sha, state.attempts) == (A, 1)


def test_configmap_roundtrip_keeps_attempts_in_annotations() -> None:
    state = State().seen(A, '"etag"').failed(A, "x")
    body = to_configmap(state, SETTINGS)
    assert body["metadata"]["annotations"][PENDING_SHA] == A
    assert body["metadata"]["annotations"][ATTEMPTS] == "1"
    assert body["data"]["lastDeployedSha"] == ""
    assert roundtrip(state) == state


def test_long_errors_are_cut() -> None:
    assert len(State().failed(A, "x" * 5000).last_error or "") <= 500
