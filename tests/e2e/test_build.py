"""``ci-runner run`` end to end, for the build a team tunes and the digest it deploys: cache,
build arguments, the build pod, and the release pinned to exactly what Kaniko pushed."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.e2e.appkit import BUILD, DEPLOYMENT, IMAGE, MIGRATION, RELEASE, App

DIGEST = "sha256:" + "5e" * 32
OTHER_DIGEST = "sha256:" + "7a" * 32
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def build_pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def kaniko(job: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = build_pod(job)["containers"][0]
    return container


@pytest.mark.helm
def test_cache_build_args_insecure_registry_and_pod_settings_reach_the_build_job(
    app: App,
) -> None:
    chosen = {
        "resources": {"requests": {"cpu": "2", "memory": "3Gi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "builds", "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "batch-low",
        "serviceAccountName": "kaniko-push",
    }
    if app.kube.emulator is None:  # real admission refuses a pod naming ones that do not exist
        for what in (
            ["serviceaccount", "kaniko-push", "-n", app.cicd],
            ["priorityclass", "batch-low", "--value=0"],
        ):
            subprocess.run(["kubectl", "create", *what], env=app.env, capture_output=True)
    done = app.run(
        BUILD_CACHE="true",
        BUILD_CACHE_TTL="72h",
        BUILD_ARGS="NODE_ENV=production,GREETING=hello world",
        KANIKO_ARGS="--snapshot-mode=redo --label 'team=web shop'",
        REGISTRY_INSECURE="true",
        BUILD_POD=json.dumps(chosen),
    )
    assert done.code == 0, done.output

    (job,) = app.build_jobs()
    args = kaniko(job)["args"]
    sha = app.heads[0]
    for expected in (
        "--cache=true",
        f"--cache-repo={IMAGE}/cache",
        "--cache-ttl=72h",
        f"--build-arg=CI_RUNNER_SHA={sha}",
        "--build-arg=CI_RUNNER_BRANCH=main",
        "--build-arg=NODE_ENV=production",
        "--build-arg=GREETING=hello world",
        "--insecure",
        "--skip-tls-verify",
    ):
        assert expected in args, (expected, args)
    assert args[-3:] == ["--snapshot-mode=redo", "--label", "team=web shop"]
    assert kaniko(job)["resources"] == chosen["resources"]
    pod = build_pod(job)
    for key in ("nodeSelector", "tolerations", "priorityClassName", "serviceAccountName"):
        assert pod[key] == chosen[key], key


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"BUILD_POD": '{"hostNetwork": true}'}, "BUILD_POD may not set 'hostNetwork'"),
        ({"KANIKO_ARGS": "--destination=evil.example.com/x:1"}, "KANIKO_ARGS may not set"),
        (
            {"BUILD_CACHE": "true", "KANIKO_ARGS": "--cache-repo=x.example.com/c"},
            "use CACHE_REPO",
        ),
        (
            {"IMAGE_DIGEST_KEY": "image.digest", "DEPLOY_BY_DIGEST": "false"},
            "IMAGE_DIGEST_KEY needs DEPLOY_BY_DIGEST on",
        ),
    ],
)
def test_a_refused_build_setting_exits_2_and_touches_nothing(
    app: App, emulator: Any, env: dict[str, str], problem: str
) -> None:
    emulator.clear_requests()
    before = len(app.github.requests)
    done = app.run(**env)
    assert done.code == 2, done.output
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error: ") and problem in line
    assert emulator.requests == []
    assert len(app.github.requests) == before


# -- deploy by digest ---------------------------------------------------------------------


@pytest.mark.helm
def test_the_release_runs_exactly_the_digest_kaniko_pushed(app: App, emulator: Any) -> None:
    emulator.jobs.behave("succeed", labels=BUILD, termination_message=DIGEST + "\n")
    sha = app.heads[0]
    done = app.run()
    assert done.code == 0, done.output
    assert f"{IMAGE}:{sha}@{DIGEST}" in done.stderr

    (job,) = app.build_jobs()
    assert kaniko(job)["terminationMessagePolicy"] == "FallbackToLogsOnError"
    (pod,) = emulator.list(
        "v1", "pods", app.cicd, label_selector=f"job-name={job['metadata']['name']}"
    )
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"].strip() == DIGEST

    assert app.deployed_image() == f"{IMAGE}:{sha}@{DIGEST}"
    status = app.status()
    assert (status["lastDeployedSha"], status["lastDeployedDigest"]) == (sha, DIGEST)
    state = app.state()
    assert state is not None
    assert state["data"]["lastDeployedDigest"] == DIGEST
    assert "ci-runner.io/built-digest" not in state["metadata"].get("annotations", {})


@pytest.mark.helm
def test_image_digest_key_gives_the_chart_the_digest_and_keeps_the_sha_tag(
    app: App, emulator: Any
) -> None:
    pinned = DEPLOYMENT.replace(
        '"{{ .Values.image.repository }}:{{ .Values.image.tag }}"',
        '"{{ .Values.image.repository }}@{{ .Values.image.digest }}"',
    )
    sha = app.push({"deploy/chart/templates/deployment.yaml": pinned}, message="pin by digest")
    emulator.jobs.behave("succeed", labels=BUILD, termination_message=DIGEST)

    done = app.run(IMAGE_DIGEST_KEY="image.digest")
    assert done.code == 0, done.output
    assert app.deployed_image() == f"{IMAGE}@{DIGEST}"
    values = app.helm("get", "values", RELEASE)
    assert values["image"] == {"repository": IMAGE, "tag": sha, "digest": DIGEST}


@pytest.mark.helm
def test_a_retried_deploy_uses_the_recorded_digest_without_rebuilding(
    app: App, emulator: Any
) -> None:
    app.env["HELM_TIMEOUT"] = "10"  # helm 3 waits for a failed Job until its timeout
    emulator.jobs.behave("succeed", labels=BUILD, termination_message=DIGEST)
    emulator.jobs.behave("fail", name=f"{RELEASE}-migrate")
    sha = app.push({"deploy/chart/templates/migrate.yaml": MIGRATION}, message="migrate")

    failed = app.run()
    assert failed.code == 1, failed.output
    state = app.state()
    assert state is not None
    assert state["metadata"]["annotations"]["ci-runner.io/built-sha"] == sha
    assert state["metadata"]["annotations"]["ci-runner.io/built-digest"] == DIGEST

    # A rebuild now would report another digest: the retry must not build, nor read a pod.
    emulator.jobs.behave("succeed", labels=BUILD, termination_message=OTHER_DIGEST)
    emulator.jobs.behave("succeed", name=f"{RELEASE}-migrate")
    retried = app.run()
    assert retried.code == 0, retried.output
    assert app.deployed_image() == f"{IMAGE}:{sha}@{DIGEST}"
    assert len(app.build_jobs()) == 1
    assert app.status()["lastDeployedDigest"] == DIGEST


@pytest.mark.helm
def test_a_build_without_a_readable_digest_deploys_the_tag_with_a_warning(
    app: App, emulator: Any
) -> None:
    emulator.jobs.behave("succeed", labels=BUILD)  # the pod's termination message is empty
    sha = app.heads[0]
    done = app.run()
    assert done.code == 0, done.output
    assert "no pod of it reports the pushed digest" in done.stderr
    assert app.deployed_image() == f"{IMAGE}:{sha}"
    assert app.status()["lastDeployedDigest"] is None


@pytest.mark.helm
def test_deploy_by_digest_off_deploys_the_plain_tag_and_reads_no_pod(
    app: App, emulator: Any
) -> None:
    emulator.jobs.behave("succeed", labels=BUILD, termination_message=DIGEST)
    emulator.clear_requests()
    done = app.run(DEPLOY_BY_DIGEST="false")
    assert done.code == 0, done.output
    assert app.deployed_image() == f"{IMAGE}:{app.heads[0]}"
    runner = [r for r in emulator.requests if r.user_agent.startswith("ci-runner/")]
    assert not [r for r in runner if r.resource == "pods" and r.verb == "list"]
