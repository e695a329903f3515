"""``ci-runner run`` end to end: a real subprocess, the emulator (or a real cluster), the GitHub
fake and real helm. Each test is a situation a user meets."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from ci_runner.kube.state import ATTEMPTS, LAST_ERROR

from tests.e2e.appkit import APP_FILES, BUILD, IMAGE, MIGRATION, RELEASE, REPO, App
from tests.e2e.secretscan import assert_nowhere
from tests.support.appkeys import public_pem, rsa_pem

WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def state_annotations(app: App) -> dict[str, str]:
    state = app.state()
    assert state is not None
    found: dict[str, str] = state["metadata"].get("annotations", {})
    return found


# -- the happy path --------------------------------------------------------------------------


@pytest.mark.helm
def test_first_deploy_builds_pushes_both_tags_and_records_the_state(app: App) -> None:
    sha = app.heads[0]
    done = app.run()
    assert done.code == 0, done.output
    assert f"deployed {sha[:7]}" in done.stderr

    (job,) = app.build_jobs()
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--destination={IMAGE}:{sha}" in args
    assert f"--destination={IMAGE}:main-latest" in args
    assert app.deployed_image() == f"{IMAGE}:{sha}"
    assert app.helm("status", RELEASE)["info"]["status"] == "deployed"

    status = app.status()
    assert status["lastDeployedSha"] == sha
    assert status["attempts"] == 0
    assert (status["repo"], status["branch"], status["release"]) == (REPO, "main", RELEASE)


@pytest.mark.helm
def test_no_op_run_reads_once_writes_nothing_and_spends_no_rate_limit(
    app: App, emulator: Any
) -> None:
    assert app.run().code == 0
    emulator.clear_requests()
    remaining = app.github.rate_limit_remaining
    api_calls = len(app.github.requests)

    done = app.run()

    assert done.code == 0, done.output
    assert "already deployed" in done.stderr
    requests = emulator.requests
    assert len(requests) <= 2, requests
    assert not [r for r in requests if r.verb in WRITES]
    (github_call,) = app.github.requests[api_calls:]
    assert github_call.status == 304
    assert app.github.rate_limit_remaining == remaining


@pytest.mark.helm
def test_a_new_commit_upgrades_the_release(app: App) -> None:
    assert app.run().code == 0
    newer = app.push({"README.md": "v2"}, message="second")
    done = app.run()
    assert done.code == 0, done.output
    assert app.deployed_image() == f"{IMAGE}:{newer}"
    assert [r["revision"] for r in app.helm("history", RELEASE)] == [1, 2]
    assert app.status()["lastDeployedSha"] == newer
    assert len(app.build_jobs()) == 2


@pytest.mark.helm
def test_branch_with_a_slash(app: App) -> None:
    app.env["BRANCH"] = "feature/new-ui"
    sha = app.push(APP_FILES, message="feature work")
    done = app.run()
    assert done.code == 0, done.output
    (job,) = app.build_jobs()
    pod = job["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    # The init container fetches exactly that commit, which the branch's head was.
    assert f"--sha={sha}" in pod["initContainers"][0]["args"]
    assert f"--destination={IMAGE}:feature-new-ui-latest" in args
    assert app.status()["lastDeployedSha"] == sha


# -- failures and retries --------------------------------------------------------------------


@pytest.mark.helm
def test_build_failures_count_attempts_until_the_runner_gives_up(app: App, emulator: Any) -> None:
    emulator.jobs.behave(
        "fail",
        labels=BUILD,
        log="step 3/5: COPY app /app\nerror: COPY failed: no such file app",
        termination_message="COPY failed",
    )
    app.env["MAX_RETRIES"] = "2"

    first = app.run()
    assert first.code == 1, first.output
    assert "attempt 1/2" in first.stderr
    assert "COPY failed: no such file app" in first.stderr  # the build pod's log is shown
    assert state_annotations(app)["ci-runner.io/attempts"] == "1"

    second = app.run()
    assert second.code == 1
    assert "attempt 2/2" in second.stderr and "giving up" in second.stderr

    third = app.run()
    assert third.code == 0, third.output
    assert "gave up" in third.stderr
    assert len(app.build_jobs()) == 2  # giving up creates no Job
    status = app.status()
    assert (status["phase"], status["maxRetries"]) == ("given-up", 2)
    assert status["lastDeployedSha"] is None
    assert "log: step 3/5: COPY app /app | error: COPY failed" in (status["lastError"] or "")

    emulator.jobs.behave("succeed", labels=BUILD)
    forced = app.run("--force")
    assert forced.code == 0, forced.output
    assert app.status()["lastDeployedSha"] == app.heads[0]


@pytest.mark.helm
def test_a_failed_deploy_rolls_back_and_the_retry_does_not_rebuild(app: App, emulator: Any) -> None:
    first = app.heads[0]
    assert app.run().code == 0
    # helm 3 retries a failed Job's readiness until its timeout: keep that short here.
    app.env["HELM_TIMEOUT"] = "10"
    emulator.jobs.behave("fail", name=f"{RELEASE}-migrate")
    second = app.push({"deploy/chart/templates/migrate.yaml": MIGRATION}, message="migrate")

    failed = app.run()
    assert failed.code == 1, failed.output
    assert "rolled back" in failed.stderr
    assert app.deployed_image() == f"{IMAGE}:{first}"
    assert app.helm("status", RELEASE)["info"]["status"] == "deployed"
    status = app.status()
    assert (status["lastDeployedSha"], status["pendingSha"], status["attempts"]) == (
        first,
        second,
        1,
    )

    emulator.jobs.behave("succeed", name=f"{RELEASE}-migrate")
    retried = app.run()
    assert retried.code == 0, retried.output
    assert app.deployed_image() == f"{IMAGE}:{second}"
    commits = [j["metadata"]["labels"]["ci-runner.io/commit"] for j in app.build_jobs()]
    assert commits.count(second) == 1  # built once, deployed on the second attempt


# -- configuration and outside failures change nothing ---------------------------------------


@pytest.mark.parametrize(
    ("env", "problems"),
    [
        (
            {"REPO": "", "IMAGE": "registry.example.com/acme/shop:v1", "MAX_RETRIES": "zero"},
            ["REPO is required", "IMAGE must be a registry/repository", "MAX_RETRIES must be"],
        ),
        ({"RELEASE": "Shop_1", "LOG_FORMAT": "yaml"}, ["RELEASE must be", "LOG_FORMAT must be"]),
        ({"VERIFY_SSL": "perhaps", "GITHUB_API_URL": "github"}, ["VERIFY_SSL", "GITHUB_API_URL"]),
        ({"CHART_PATH": "../up", "BUILD_TIMEOUT": "-1"}, ["CHART_PATH must be", "BUILD_TIMEOUT"]),
    ],
)
def test_configuration_errors_name_every_problem_and_touch_nothing(
    app: App, emulator: Any, env: dict[str, str], problems: list[str]
) -> None:
    emulator.clear_requests()
    before = len(app.github.requests)
    done = app.run(**env)
    assert done.code == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    for problem in problems:
        assert problem in line
    assert emulator.requests == []
    assert len(app.github.requests) == before


@pytest.mark.parametrize(
    ("files", "env", "message"),
    [
        ({"deploy/chart/Chart.yaml": None}, {}, "holds no Chart.yaml"),
        ({}, {"CHART_PATH": "charts/missing"}, "does not exist"),
        ({}, {"VALUES_FILES": "values-prod.yaml"}, "values-prod.yaml' does not exist"),
    ],
)
def test_a_bad_commit_costs_max_retries_tries_then_nothing(
    app: App, emulator: Any, files: dict[str, str | None], env: dict[str, str], message: str
) -> None:
    if files:
        app.push(files)
    sha = app.heads[-1]
    runs = [app.run(**env) for _ in range(5)]
    assert [r.code for r in runs] == [1, 1, 1, 0, 0], [r.output for r in runs]
    assert message in runs[0].stderr
    assert "giving up on it" in runs[2].stderr
    assert f"gave up on {sha[:7]} after 3 failed attempt(s)" in runs[4].stderr
    downloads = [r for r in app.github.requests if "/tarball/" in r.path]
    assert len(downloads) == 3  # MAX_RETRIES, and none once it is given up
    assert state_annotations(app)[ATTEMPTS] == "3"
    assert message in state_annotations(app)[LAST_ERROR]
    assert app.build_jobs() == []
    # While it is given up on, each run is a conditional read GitHub answers 304.
    heads = [r for r in app.github.requests if "/commits/" in r.path]
    assert [r.status for r in heads[-2:]] == [304, 304]
    emulator.clear_requests()
    assert app.run(**env).code == 0
    assert not [r for r in emulator.requests if r.verb in WRITES]


def test_a_hostile_archive_is_a_failed_attempt_and_deploys_nothing(app: App, emulator: Any) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"acme-shop-{app.heads[0][:7]}/deploy/chart/Chart.yaml")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    app.github.set_tarball(REPO, app.heads[0], buffer.getvalue())
    emulator.clear_requests()
    done = app.run()
    assert done.code == 1, done.output
    assert "link or special file" in done.stderr
    written = {(r.verb, r.resource) for r in emulator.requests if r.verb in WRITES}
    assert {resource for _, resource in written} <= {"configmaps", "leases", "events"}
    assert app.build_jobs() == []
    assert "link or special file" in state_annotations(app)[LAST_ERROR]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("500", "GitHub answered 500"),
        ("rate", "rate limit exhausted"),
        ("down", "GitHub is unreachable"),
    ],
)
def test_github_failures_exit_3_and_leave_the_state_alone(
    app: App, emulator: Any, fault: str, message: str
) -> None:
    env = {}
    if fault == "500":
        app.github.fail_next("GET", "/commits/", 500)
    elif fault == "rate":
        app.github.rate_limit_exhausted()
    else:
        env["GITHUB_API_URL"] = "http://127.0.0.1:9"  # discard port: nothing listens
    emulator.clear_requests()
    done = app.run(**env)
    assert done.code == 3, done.output
    assert message in done.stderr
    assert not [r for r in emulator.requests if r.verb in WRITES]
    assert app.state() is None


def test_kubernetes_api_failures_exit_3(app: App, emulator: Any) -> None:
    emulator.faults.add("GET", "/configmaps/", 500)
    done = app.run()
    assert done.code == 3
    assert "Kubernetes API answered 500" in done.stderr

    emulator.faults.add("GET", "/configmaps/", "hang")
    done = app.run(API_TIMEOUT="1")
    assert done.code == 3
    assert "Kubernetes API unreachable" in done.stderr and "timed out" in done.stderr
    assert app.state() is None


@pytest.mark.helm
def test_job_creation_refused_counts_no_attempt(app: App, emulator: Any) -> None:
    emulator.faults.add("POST", "/jobs$", 500)
    done = app.run()
    assert done.code == 3, done.output
    assert app.state() is None  # no attempt recorded for an outside failure
    assert app.run().code == 0


# -- dry run, concurrency, crashes ------------------------------------------------------------


def test_dry_run_prints_the_plan_and_writes_nothing(app: App, emulator: Any) -> None:
    sha = app.heads[0]
    emulator.clear_requests()
    done = app.run("--dry-run")
    assert done.code == 0, done.output
    assert f"commit:  {sha}" in done.stdout
    assert f"--destination={IMAGE}:{sha}" in done.stdout
    assert "helm upgrade shop" in done.stdout and "--wait" in done.stdout
    assert not [r for r in emulator.requests if r.verb in WRITES]
    assert app.build_jobs() == []


@pytest.mark.helm
def test_two_runs_at_once_build_and_deploy_once(app: App, emulator: Any) -> None:
    emulator.jobs.behave("hold", labels=BUILD)
    first = app.start()
    try:
        job = app.wait_for_build_job()
        second = app.run()
        assert second.code == 0, second.output
        assert "holds Lease" in second.stderr
        emulator.jobs.release(app.cicd, job)
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, err
    assert len(app.build_jobs()) == 1
    assert app.status()["lastDeployedSha"] == app.heads[0]


@pytest.mark.helm
def test_a_crashed_runs_build_job_is_adopted(app: App, emulator: Any) -> None:
    emulator.jobs.behave("hold", labels=BUILD)
    crashed = app.start()
    job = app.wait_for_build_job()
    crashed.kill()  # SIGKILL: no clean-up, the Lease stays held
    crashed.communicate()

    blocked = app.run()
    assert blocked.code == 0 and "holds Lease" in blocked.stderr

    app.expire_lease()  # as a minute would
    emulator.jobs.release(app.cicd, job)

    adopted = app.run()
    assert adopted.code == 0, adopted.output
    assert f"adopting build Job {app.cicd}/{job}" in adopted.stderr
    assert len(app.build_jobs()) == 1
    assert app.status()["lastDeployedSha"] == app.heads[0]


@pytest.mark.helm
def test_a_release_left_pending_by_a_killed_helm_is_recovered(app: App, emulator: Any) -> None:
    assert app.run().code == 0
    killed, held, newer = app.start_a_slow_upgrade()  # helm waits: the release is pending
    app.kill_like_a_node_loss(killed)
    assert app.helm("status", RELEASE)["info"]["status"] == "pending-upgrade"

    app.expire_lease()
    emulator.jobs.release(app.deploy_ns, held)
    emulator.jobs.behave("succeed", name=f"{RELEASE}-migrate")
    recovered = app.run()
    assert recovered.code == 0, recovered.output
    assert app.deployed_image() == f"{IMAGE}:{newer}"
    assert app.helm("status", RELEASE)["info"]["status"] == "deployed"


# -- the token stays secret -------------------------------------------------------------------

TOKEN = "fake-e2e-token-0123456789abcdefABCDEF"  # shaped unlike real ones: no scanner alarm


@pytest.mark.helm
def test_the_token_appears_nowhere(app: App, emulator: Any) -> None:
    app.github.require_token(TOKEN)
    app.env["GIT_TOKEN"] = TOKEN

    ok = app.run("--verbose")
    assert ok.code == 0, ok.output
    app.github.fail_next("GET", "/commits/", 401)
    failed = app.run("--verbose", "--force")
    emulator.jobs.behave("fail", labels=BUILD, log=f"git clone failed for {TOKEN}")
    build_failed = app.run("--force", "--log-format=json")
    # A refused token, and a forced run failing on the deployed commit: configuration (exit 2).
    assert failed.code == 2 and build_failed.code == 2

    (job, *_) = app.build_jobs()
    pod = job["spec"]["template"]["spec"]
    # Only the init container that fetches the context gets the token (a Secret reference);
    # Kaniko, which runs the app's Dockerfile, has no environment at all.
    assert "env" not in pod["containers"][0]
    (fetch,) = pod["initContainers"]
    assert [e for e in fetch["env"] if "valueFrom" in e] == [
        {
            "name": "GIT_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": f"ci-runner-{RELEASE}-git", "key": "token"}},
        },
    ]
    assert emulator.get("v1", "secrets", app.cicd, f"ci-runner-{RELEASE}-git") is not None
    assert_nowhere(app, emulator, [TOKEN], [ok, failed, build_failed], kept=[TOKEN])
    assert [r for r in app.github.requests if r.host == "download"]


@pytest.mark.helm
def test_the_app_key_and_installation_tokens_appear_nowhere(app: App, emulator: Any) -> None:
    key = rsa_pem()
    app.github.register_app("4242", public_pem(key), 77)
    app.github.require_token("only-installation-tokens-get-in")
    app.env.update(GITHUB_APP_ID="4242", GITHUB_APP_INSTALLATION_ID="77")
    app.env["GITHUB_APP_PRIVATE_KEY"] = key

    # Under the ten minutes before expiry: renewed at each use, so every token minted mid-run
    # is looked for too; the next run renews the last (an hour, then) and keeps it.
    app.github.set_app_token_lifetime(240)
    ok = app.run("--verbose")
    app.github.set_app_token_lifetime(3600)
    app.github.fail_next("GET", "/commits/", 401)
    failed = app.run("--verbose", "--force")
    tokens = app.github.app_tokens
    kept = tokens[-1]
    emulator.jobs.behave("fail", labels=BUILD, log=f"git clone failed for {kept}")
    build_failed = app.run("--force", "--log-format=json")  # with the kept token
    assert (ok.code, failed.code, build_failed.code) == (0, 2, 2), build_failed.output

    jwts = [
        str(r.header("Authorization")).removeprefix("Bearer ")
        for r in app.github.requests
        if r.path.startswith("/app/")
    ]
    assert len(tokens) > 2 and len(jwts) == len(tokens) and app.github.app_tokens == tokens
    runs = [ok, failed, build_failed]
    assert_nowhere(app, emulator, [key, *jwts, *tokens], runs, kept=[kept])


@pytest.mark.helm
def test_without_create_namespace_the_runner_never_touches_namespaces(
    app: App, emulator: Any
) -> None:
    emulator.create_namespace(app.deploy_ns)
    done = app.run(CREATE_NAMESPACE="false")
    assert done.code == 0, done.output
    assert not [r for r in emulator.requests if r.resource == "namespaces"]
    assert app.deployed_image() == f"{IMAGE}:{app.heads[0]}"


@pytest.mark.helm
def test_sigterm_releases_the_lease_so_the_next_run_need_not_wait(app: App, emulator: Any) -> None:
    emulator.jobs.behave("hold", labels=BUILD)
    stopped = app.start()
    job = app.wait_for_build_job()
    err = app.terminate(stopped)
    assert stopped.returncode == 128 + signal.SIGTERM, err

    emulator.jobs.release(app.cicd, job)
    done = app.run()  # no Lease to wait out: it was released
    assert done.code == 0, done.output
    assert "adopting build Job" in done.stderr


@pytest.mark.helm
def test_a_conflicting_state_write_is_reread_not_overwritten(app: App, emulator: Any) -> None:
    emulator.jobs.behave("fail", labels=BUILD)
    assert app.run().code == 1
    emulator.faults.add("PUT", "/configmaps/ci-runner-shop$", 409)  # someone wrote in between
    done = app.run()
    assert done.code == 1, done.output
    assert [r for r in emulator.requests if r.verb == "update" and r.status == 409]
    assert state_annotations(app)["ci-runner.io/attempts"] == "2"  # re-read and counted once


@pytest.mark.helm
def test_dry_run_says_in_plain_words_what_a_run_would_do(app: App, emulator: Any) -> None:
    sha = app.heads[0]
    emulator.clear_requests()
    done = app.run("--dry-run", CICD_NS="not-yet")
    assert done.code == 0, done.output
    out = done.stdout
    assert "CICD_NS: not-yet does not exist: the run would create it, labelled " in out
    assert f"DEPLOY_NS: {app.deploy_ns} does not exist: the run would create it\n" in out
    assert f"image:   {IMAGE}:{sha}@sha256:<the digest the build pushes>" in out
    assert f"tag: {sha}@sha256:<the digest the build pushes>" in out  # the values helm gets
    assert "helm template renders it with these values" in out
    assert f"pushes {IMAGE}:{sha} and {IMAGE}:main-latest" in out
    assert "&id0" not in out and "*id0" not in out  # no YAML anchors
    assert not [r for r in emulator.requests if r.verb in WRITES]
    emulator.clear_requests()  # nothing replayed against Roles in a namespace that is not there
