"""Apps sharing one CICD namespace stay apart (issue 17): their build Jobs never collide, a Job
that is not this app's build of this commit is never adopted, and a commit's YAML cannot make
the runner blow up."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from ci_runner.kube.build_job import job_name
from kubernetes import client

from tests.e2e.appkit import BUILD, REPO, App
from tests.e2e.secretscan import assert_nowhere
from tests.support.hostile import ANCHOR_BOMB
from tests.support.notify_server import NotifyServer

# Two releases whose first 50 characters are the same (helm allows 53).
SHARED = "payments-" + "p" * 40 + "-"
TWINS = (SHARED + "eu", SHARED + "us")


def jobs_by_release(app: App) -> dict[str, list[str]]:
    """Every Job in the CICD namespace, by the release its labels name."""
    with app.api() as api:
        listed = client.BatchV1Api(api).list_namespaced_job(app.cicd)
    found: dict[str, list[str]] = {}
    for job in listed.items:
        release = (job.metadata.labels or {}).get("ci-runner.io/release", "")
        found.setdefault(release, []).append(job.metadata.name)
    return found


@pytest.mark.helm
def test_two_apps_whose_names_share_fifty_characters_build_into_distinct_jobs(app: App) -> None:
    sha = app.heads[0]
    for release in TWINS:
        done = app.run(RELEASE=release)
        assert done.code == 0, done.output
        assert f"deployed {sha[:7]} as {app.deploy_ns}/{release}" in done.stderr
        assert "adopting" not in done.stderr

    jobs = jobs_by_release(app)
    assert sorted(jobs) == sorted(TWINS)
    (eu,), (us,) = jobs[TWINS[0]], jobs[TWINS[1]]
    assert eu != us
    assert eu == job_name(TWINS[0], sha, 1) and us == job_name(TWINS[1], sha, 1)


@pytest.mark.helm
def test_a_job_of_another_app_under_the_builds_name_is_named_and_never_adopted(
    app: App,
) -> None:
    sha = app.heads[0]
    name = job_name("shop", sha, 1)
    squatter: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"ci-runner.io/release": "other", **BUILD}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "x", "image": "busybox"}],
                }
            }
        },
    }
    with app.api() as api:
        client.BatchV1Api(api).create_namespaced_job(app.cicd, squatter)

    refused = app.run()
    assert refused.code == 2, refused.output
    assert f"Error: Job {app.cicd}/{name} has the name of the build of shop" in refused.stderr
    assert "(its labels say release 'other', commit None): not adopted" in refused.stderr
    assert "adopting" not in refused.stderr
    assert jobs_by_release(app) == {"other": [name]}  # nothing else was built under its name
    state = app.state()
    assert state is None or not state["data"].get("lastDeployedSha")


TOKEN = "fake-e2e-token-0123456789abcdefABCDEF"


@pytest.mark.helm
@pytest.mark.parametrize(
    ("file", "settings", "named"),
    [
        ("bomb.yaml", {"VALUES_FILES": "bomb.yaml"}, "VALUES_FILES entry 'bomb.yaml'"),
        ("values.yaml", {}, "the chart's values.yaml"),
    ],
)
def test_an_anchor_bomb_is_a_bad_commit_refused_before_any_build(
    app: App, file: str, settings: dict[str, str], named: str
) -> None:
    app.github.require_token(TOKEN)
    app.env["GIT_TOKEN"] = TOKEN
    sha = app.push({f"deploy/chart/{file}": ANCHOR_BOMB}, message="bomb")

    done = app.run(**settings)
    assert done.code == 1, done.output
    why = f"{named} is refused: its aliases expand too much"
    assert f"attempt 1/3 on {sha[:7]} failed: {why}" in done.stderr
    assert jobs_by_release(app) == {}  # no build was spent on it
    state = app.state()
    assert state is not None
    assert state["metadata"]["annotations"]["ci-runner.io/attempts"] == "1"
    (status,) = app.github.statuses(REPO, sha)
    assert status["state"] == "failure" and why in str(status["description"])


def packaged(name: str, files: dict[str, str]) -> bytes:
    """A subchart as `helm package` lays it out (``<name>/...`` in a .tgz), built by hand:
    helm refuses to package an anchor bomb itself."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(f"{name}/{path}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.helm
def test_an_anchor_bomb_in_a_packaged_subchart_is_refused_by_helm_before_any_build(
    app: App,
) -> None:
    # The runner does not unpack charts/*.tgz: helm does, and its YAML reader refuses excessive
    # aliasing (sigs.k8s.io/yaml on go-yaml: "yaml: document contains excessive aliasing") in
    # the `helm template` the runner runs before a build. Tried with helm 3.18 and 4.1: refused
    # in 0.1 s within 50 MB.
    sub = packaged("sub", {"Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
                           "values.yaml": ANCHOR_BOMB})  # fmt: skip
    sha = app.push({"deploy/chart/charts/sub-0.1.0.tgz": sub}, message="a bomb, packaged")

    done = app.run()
    assert done.code == 1, done.output
    assert f"attempt 1/3 on {sha[:7]} failed" in done.stderr
    assert "excessive aliasing" in done.stderr
    assert jobs_by_release(app) == {}  # no build was spent on it
    state = app.state()
    assert state is not None
    assert state["metadata"]["annotations"]["ci-runner.io/attempts"] == "1"


REGISTRY_USER = "robot"
REGISTRY_PASSWORD = "fake-registry/pass+word:0123456789"  # what URL and base64 encoding change


@pytest.mark.helm
def test_a_build_log_printing_the_registry_password_shows_it_masked_everywhere(
    app: App, emulator: Any, notified: NotifyServer
) -> None:
    auth = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()
    config = {"auths": {"r.example.com": {"username": REGISTRY_USER, "auth": auth}}}
    with app.api() as api:
        client.CoreV1Api(api).create_namespaced_secret(
            app.cicd,
            {
                "metadata": {"name": "registry-push"},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": json.dumps(config)},
            },
        )
    app.github.require_token(TOKEN)
    app.env.update(
        GIT_TOKEN=TOKEN,
        REGISTRY_SECRET="registry-push",
        NOTIFY_URL=notified.url,
        GITHUB_DEPLOYMENTS="true",
    )
    printed = "\n".join(
        [
            f"pushing with {REGISTRY_USER}:{REGISTRY_PASSWORD}",
            f"POST https://{REGISTRY_USER}:{quote(REGISTRY_PASSWORD, safe='')}@r.example.com/v2/",
            f"Authorization: Basic {auth}",
            f"config: {json.dumps(config)}",
            f"token={quote_plus(REGISTRY_PASSWORD)} and {TOKEN}: denied",
        ]
    )
    emulator.jobs.behave("fail", labels=BUILD, log=printed)

    failed = app.run()
    json_failed = app.run("--log-format=json", "--force")
    assert (failed.code, json_failed.code) == (1, 1), failed.output
    assert "build pod log" in failed.stderr and "r.example.com/v2/" in failed.stderr
    assert "***" in failed.stderr
    last_error = (app.state() or {})["metadata"]["annotations"]["ci-runner.io/last-error"]
    assert "denied" in last_error and "***" in last_error
    assert [body["event"] for body in notified.bodies] == ["failed", "failed"]
    assert_nowhere(
        app,
        emulator,
        [REGISTRY_PASSWORD, auth, TOKEN],
        [failed, json_failed],
        kept=[TOKEN],
        notified=notified.bodies,
        sources=["registry-push"],
    )
