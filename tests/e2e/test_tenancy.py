"""Apps sharing one CICD namespace stay apart (issue 17): their build Jobs never collide, a Job
that is not this app's build of this commit is never adopted, and a commit's YAML cannot make
the runner blow up."""

from __future__ import annotations

from typing import Any

import pytest
from ci_runner.kube.build_job import job_name
from kubernetes import client

from tests.e2e.appkit import BUILD, REPO, App
from tests.support.hostile import ANCHOR_BOMB

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
