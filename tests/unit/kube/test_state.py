"""State transitions and their ConfigMap form: what a person reads with kubectl."""

from __future__ import annotations

from typing import Any

import pytest
from ci_runner.config import Settings, load
from ci_runner.errors import ConfigError
from ci_runner.kube.state import (
    ATTEMPTS,
    BUILT_DIGEST,
    BUILT_SHA,
    ETAG,
    ETAG_SHA,
    PENDING_SHA,
    State,
    from_configmap,
    status_report,
    to_configmap,
)

A = "a" * 40
SETTINGS = load(
    Settings, {}, {"REPO": "o/r", "IMAGE": "r.io/o/r", "CHART_PATH": "c", "RELEASE": "r"}
)


def roundtrip(state: State) -> State:
    body = to_configmap(state, SETTINGS)
    body["metadata"]["resourceVersion"] = state.resource_version
    return from_configmap(body)


def test_failures_count_and_success_clears() -> None:
    state = State().attempt_failed(A, "build failed").attempt_failed(A, "build failed again")
    assert (state.pending_sha, state.attempts, state.last_error) == (A, 2, "build failed again")
    done = state.deployed(A, "2026-11-25T00:00:00+00:00", 4)
    assert (done.deployed_sha, done.revision, done.attempts, done.pending_sha) == (A, 4, 0, None)


def test_a_built_image_survives_a_failed_deploy() -> None:
    state = State().built(A).attempt_failed(A, "helm failed")
    assert (state.built_sha, state.attempts) == (A, 1)


DIGEST = "sha256:" + "0f" * 32


def test_the_built_digest_is_kept_with_the_built_sha_until_the_deploy() -> None:
    built = State().built(A, DIGEST).attempt_failed(A, "helm failed")
    assert (built.built_sha, built.built_digest) == (A, DIGEST)
    body = to_configmap(built, SETTINGS)
    assert body["metadata"]["annotations"][BUILT_DIGEST] == DIGEST
    assert roundtrip(built) == built

    done = built.deployed(A, "2026-11-25T00:00:00+00:00", 2, DIGEST)
    assert (done.built_sha, done.built_digest, done.deployed_digest) == (None, None, DIGEST)
    body = to_configmap(done, SETTINGS)
    assert BUILT_DIGEST not in body["metadata"]["annotations"]
    assert body["data"]["lastDeployedDigest"] == DIGEST
    assert status_report(body, SETTINGS)["lastDeployedDigest"] == DIGEST


def test_a_failed_build_of_another_commit_drops_the_digest() -> None:
    state = State().built(A, DIGEST).attempt_failed("b" * 40, "build failed")
    assert (state.built_sha, state.built_digest) == (None, None)


def test_a_deploy_by_tag_records_no_digest() -> None:
    done = State(deployed_digest=DIGEST).deployed(A, "2026-11-25T00:00:00+00:00", 3, None)
    assert to_configmap(done, SETTINGS)["data"]["lastDeployedDigest"] == ""


def test_configmap_roundtrip_keeps_attempts_in_annotations() -> None:
    state = State(resource_version="7").with_etag(A, '"etag"').attempt_failed(A, "x")
    body = to_configmap(state, SETTINGS)
    assert body["metadata"]["annotations"][PENDING_SHA] == A
    assert body["metadata"]["annotations"][ATTEMPTS] == "1"
    assert body["data"]["lastDeployedSha"] == ""
    assert roundtrip(state) == state


def test_long_errors_are_cut() -> None:
    assert len(State().attempt_failed(A, "x" * 5000).last_error or "") <= 1000


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("data", {"lastDeployedSha": "not-a-sha"}),
        ("data", {"lastRevision": "-3"}),
        ("annotations", {PENDING_SHA: "main", ATTEMPTS: "2"}),
        ("annotations", {PENDING_SHA: A, ATTEMPTS: "-1"}),
        ("annotations", {PENDING_SHA: A, ATTEMPTS: "many"}),
        ("annotations", {BUILT_SHA: A.upper()}),
        ("annotations", {ETAG: '"x"', ETAG_SHA: "HEAD"}),
        ("annotations", {BUILT_DIGEST: "sha256:latest"}),
        ("data", {"lastDeployedDigest": "latest"}),
        ("data", {"lastSkippedSha": "HEAD"}),
    ],
)
def test_a_field_the_runner_did_not_write_is_ignored_with_a_warning(
    where: str, value: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    cm: dict[str, dict[str, Any]] = {"metadata": {"annotations": {}}, "data": {}}
    cm["data" if where == "data" else "metadata"].update(
        value if where == "data" else {"annotations": value}
    )
    state = from_configmap(cm)
    assert state.attempts == 0 or state.pending_sha is None
    assert state.attempts >= 0
    assert state.deployed_sha is None and state.built_sha is None and state.etag is None
    assert state.revision is None
    assert state.built_digest is None and state.deployed_digest is None
    assert state.skipped_sha is None
    assert "is not what the runner writes" in caplog.text


def test_status_phases() -> None:
    def phase(state: State) -> str:
        cm = to_configmap(state, SETTINGS)
        return str(status_report(cm, SETTINGS)["phase"])

    assert status_report(None, SETTINGS)["phase"] == "none"
    assert phase(State()) == "none"
    assert phase(State().deployed(A, "t", 1)) == "deployed"
    assert phase(State().attempt_failed(A, "x")) == "failing"
    assert (
        phase(State().attempt_failed(A, "x").attempt_failed(A, "x").attempt_failed(A, "x"))
        == "given-up"
    )


def test_what_another_writer_put_on_the_configmap_is_written_back() -> None:
    """A write replaces the whole ConfigMap: a person's annotation or a policy tool's label
    read with the state must go back with it (found on a real API server: it was lost)."""
    cm = to_configmap(State(pending_sha="a" * 40, attempts=1), SETTINGS)
    cm["metadata"]["annotations"]["team.example.com/note"] = "looking into it"
    cm["metadata"]["labels"]["policy.example.com/owner"] = "web"
    cm["metadata"]["resourceVersion"] = "7"
    again = to_configmap(from_configmap(cm).attempt_failed("a" * 40, "boom"), SETTINGS)
    assert again["metadata"]["annotations"]["team.example.com/note"] == "looking into it"
    assert again["metadata"]["annotations"]["ci-runner.io/attempts"] == "2"
    assert again["metadata"]["labels"]["policy.example.com/owner"] == "web"
    assert again["metadata"]["labels"]["ci-runner.io/release"] == SETTINGS.release


def test_each_deploy_heads_the_history_which_keeps_the_newest() -> None:
    state = State()
    for n, sha in enumerate(["a" * 40, "b" * 40, "c" * 40], 1):
        state = state.deployed(sha, f"t{n}", n, None, keep=2, how="forced" if n == 3 else "build")
    again = from_configmap(to_configmap(state, SETTINGS))
    assert [(d.sha[0], d.revision, d.how) for d in again.history] == [
        ("c", 3, "forced"),
        ("b", 2, "build"),
    ]


def test_a_history_the_runner_did_not_write_is_dropped_not_trusted() -> None:
    cm = to_configmap(State(), SETTINGS)
    cm["data"]["history"] = '[{"sha": "not-a-sha"}, 7, {"sha": "' + "d" * 40 + '", "revision": 4}]'
    assert [d.sha for d in from_configmap(cm).history] == ["d" * 40]
    cm["data"]["history"] = "{"
    assert from_configmap(cm).history == ()


def test_status_says_what_the_next_run_does_or_what_to_do() -> None:
    cm = to_configmap(State(pending_sha=A, attempts=1, last_error="boom"), SETTINGS)
    assert status_report(cm, SETTINGS)["next"] == f"retry {A[:7]} (attempt 2 of 3)"
    cm = to_configmap(State(pending_sha=A, attempts=3), SETTINGS)
    assert "push a new commit, or `ci-runner run --force`" in status_report(cm, SETTINGS)["next"]
    cm = to_configmap(State(deployed_sha=A, pinned_sha=A), SETTINGS)
    assert "`ci-runner unpin`" in status_report(cm, SETTINGS)["next"]
    assert status_report(None, SETTINGS)["next"] == "build and deploy the branch head"
    assert status_report(cm, SETTINGS)["deployNamespace"] == SETTINGS.deploy_namespace


def test_the_checks_of_a_waiting_head_round_trip_and_go_when_it_is_skipped_or_deployed() -> None:
    from ci_runner.kube.state import CHECKS, Checks

    seen = Checks(A, '"e1"', (("test", "pending"), ("test", "success")), None, ())
    waiting = roundtrip(State().waiting(seen))
    assert waiting.checks == seen
    skipped = roundtrip(waiting.skipped(A, "required check(s) failed: test (failure)"))
    assert (skipped.checks, skipped.skipped_reason) == (
        None,
        "required check(s) failed: test (failure)",
    )
    assert roundtrip(waiting.deployed(A, "now", 1)).checks is None
    body = to_configmap(State(), SETTINGS)
    body["metadata"]["annotations"][CHECKS] = '{"sha": "not a sha"}'  # edited by hand
    assert from_configmap(body).checks is None


def test_require_checks_is_names_or_all_alone_and_never_the_runners_own_context() -> None:
    base = {"REPO": "o/r", "IMAGE": "r.io/o/r", "CHART_PATH": "c", "RELEASE": "r"}
    loaded = load(Settings, {}, {**base, "REQUIRE_CHECKS": " test , ci/lint,test"})
    assert loaded.require_checks == ("test", "ci/lint")
    with pytest.raises(ConfigError, match="'all' stands alone"):
        load(Settings, {}, {**base, "REQUIRE_CHECKS": "all,test"})
    with pytest.raises(ConfigError, match="REQUIRE_CHECKS names STATUS_CONTEXT 'ci-runner/r'"):
        load(Settings, {}, {**base, "REQUIRE_CHECKS": "test,ci-runner/r"})
