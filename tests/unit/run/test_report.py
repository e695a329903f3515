"""What GitHub and the operator are told: the pure decisions, then the Reporter over the GitHub
fake and a NOTIFY_URL server on 127.0.0.1."""

from __future__ import annotations

import logging

import pytest
from ci_runner.github.client import GitHub
from ci_runner.run import report
from ci_runner.run.report import Reporter

from tests.support.github_fake import GitHubFake
from tests.support.notify_server import NotifyServer
from tests.support.settings import app_settings


def test_the_steps_of_a_cycle() -> None:
    assert report.building() == report.Report("pending", "building", "in_progress")
    assert report.deploying().description == "deploying"
    done = report.deployed("web", "shop", 3)
    assert (done.state, done.description, done.event) == (
        "success",
        "deployed as web/shop revision 3",
        "deployed",
    )


def test_a_failed_attempt_and_the_last_one() -> None:
    first = report.failure(1, 3, "build Job shop-build-1 failed: BackoffLimitExceeded")
    assert (first.state, first.deployment, first.event) == ("failure", "failure", "failed")
    assert (
        first.description
        == "attempt 1/3 failed: build Job shop-build-1 failed: BackoffLimitExceeded"
    )
    last = report.failure(3, 3, "helm upgrade failed " + "x" * 300)
    assert last.event == "given-up"
    assert last.description.startswith("given up after 3 attempts: helm upgrade failed")
    assert len(last.description) == report.MAX_DESCRIPTION


@pytest.fixture
def sha(github: GitHubFake) -> str:
    github.create_repo("acme/shop")
    return github.push("acme/shop", "main", {"README.md": "hi"})


def reporter(github: GitHubFake, **env: str) -> tuple[Reporter, GitHub]:
    settings = app_settings(
        **{"GITHUB_API_URL": github.url, "API_TIMEOUT": "2", "GIT_TOKEN": "fake-token-t", **env}
    )
    client = GitHub(settings)
    return Reporter(settings, client), client


def test_a_deploy_posts_statuses_a_deployment_and_a_notification(
    github: GitHubFake, sha: str, notified: NotifyServer
) -> None:
    reporter_, client = reporter(
        github, GITHUB_DEPLOYMENTS="true", NOTIFY_URL=notified.url, DEPLOY_NS="web"
    )
    with client:
        reporter_.building(sha)
        reporter_.deploying(sha)
        reporter_.deployed(sha, 2)
    statuses = [
        (s["state"], s["context"], s["description"]) for s in github.statuses("acme/shop", sha)
    ]
    assert statuses == [
        ("pending", "ci-runner/shop", "building"),
        ("pending", "ci-runner/shop", "deploying"),
        ("success", "ci-runner/shop", "deployed as web/shop revision 2"),
    ]
    (deployment,) = github.deployments("acme/shop")
    assert (deployment["sha"], deployment["environment"]) == (sha, "web/shop")
    assert [s["state"] for s in deployment["statuses"]] == ["in_progress", "in_progress", "success"]
    (body,) = notified.bodies
    assert body["event"] == "deployed" and body["sha"] == sha
    assert body["text"] == (
        f"ci-runner shop: acme/shop@{sha[:7]} (main) deployed: deployed as web/shop revision 2"
    )


def test_refusals_are_one_warning_per_kind_and_run(
    github: GitHubFake, sha: str, caplog: pytest.LogCaptureFixture
) -> None:
    github.refuse("statuses")
    reporter_, client = reporter(github, GITHUB_DEPLOYMENTS="true")
    with client, caplog.at_level(logging.WARNING):
        reporter_.building(sha)
        reporter_.deploying(sha)
        reporter_.attempt_failed(sha, 1, 3, "boom")
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "GitHub refused posting a commit status (403" in warning
    assert "'Commit statuses: write' (classic token: repo:status)" in warning
    assert "GitHub asks for statuses=write" in warning
    posts = [r for r in github.requests if r.path.endswith(f"/statuses/{sha}")]
    assert len(posts) == 1  # not tried again this run
    (deployment,) = github.deployments("acme/shop")  # deployments were allowed
    assert [s["state"] for s in deployment["statuses"]] == ["in_progress", "in_progress", "failure"]


def test_without_credentials_or_when_off_nothing_is_posted(github: GitHubFake, sha: str) -> None:
    for env in ({"GIT_TOKEN": ""}, {"GITHUB_STATUS": "false"}):
        reporter_, client = reporter(github, **env)
        with client:
            reporter_.building(sha)
            reporter_.deployed(sha, 1)
    assert github.statuses("acme/shop", sha) == []
    assert github.requests == []


def test_a_failure_before_any_deploy_makes_no_deployment(
    github: GitHubFake, sha: str, notified: NotifyServer
) -> None:
    reporter_, client = reporter(github, GITHUB_DEPLOYMENTS="true", NOTIFY_URL=notified.url)
    with client:
        reporter_.attempt_failed(sha, 3, 3, "CHART_PATH 'c' does not exist")
    (status,) = github.statuses("acme/shop", sha)
    assert status["description"] == "given up after 3 attempts: CHART_PATH 'c' does not exist"
    assert github.deployments("acme/shop") == []
    (body,) = notified.bodies
    assert (body["event"], body["error"]) == ("given-up", "CHART_PATH 'c' does not exist")


def test_a_notify_url_that_fails_is_a_warning(
    github: GitHubFake, sha: str, notified: NotifyServer, caplog: pytest.LogCaptureFixture
) -> None:
    notified.status = 500
    reporter_, client = reporter(github, NOTIFY_URL=notified.url)
    with client, caplog.at_level(logging.WARNING):
        reporter_.deployed(sha, 1)
        reporter_.attempt_failed(sha, 1, 3, "later")
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning == "could not notify: NOTIFY_URL answered 500; no more notifications this run"
    assert len(notified.bodies) == 1
