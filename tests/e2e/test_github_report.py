"""GitHub and the operator know what happened: commit statuses, GitHub Deployments, NOTIFY_URL,
and GitHub App authentication, end to end (``ci-runner run`` against the emulator, the GitHub
fake and real helm)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ci_runner.kube.token_secret import EXPIRES
from kubernetes import client

from tests.e2e.appkit import BUILD, RELEASE, REPO, App, Run
from tests.support.appkeys import public_pem, rsa_pem
from tests.support.github_fake import GitHubFake
from tests.support.notify_server import NotifyServer

TOKEN = "fake-e2e-token-0123456789abcdefABCDEF"
APP_ID, INSTALLATION = "4242", 77
CONTEXT = f"ci-runner/{RELEASE}"


def statuses(app: App, sha: str) -> list[tuple[str, str]]:
    found = app.github.statuses(REPO, sha)
    assert all(s["context"] == CONTEXT for s in found), found
    return [(str(s["state"]), str(s["description"])) for s in found]


def warnings(run: Run) -> list[str]:
    return [line for line in run.stderr.splitlines() if " WARNING " in line]


def with_token(app: App) -> None:
    app.github.require_token(TOKEN)
    app.env["GIT_TOKEN"] = TOKEN


def with_app(app: App, key: str | None = None) -> None:
    """Authenticate as a GitHub App installation; ``key``: sign with another key than the
    one GitHub knows."""
    app.github.register_app(APP_ID, public_pem(rsa_pem()), INSTALLATION)
    app.github.require_token("only-installation-tokens-get-in")
    app.env.update(
        GITHUB_APP_ID=APP_ID,
        GITHUB_APP_INSTALLATION_ID=str(INSTALLATION),
        GITHUB_APP_PRIVATE_KEY=key or rsa_pem(),
    )


def kept_secret(emulator: Any, app: App) -> dict[str, Any]:
    secret: dict[str, Any] = emulator.get("v1", "secrets", app.cicd, f"ci-runner-{RELEASE}-git")
    assert secret is not None
    return secret


def kept_token(secret: dict[str, Any]) -> str:
    return base64.b64decode(secret["data"]["token"]).decode()


# -- commit statuses and notifications -------------------------------------------------------


@pytest.mark.helm
def test_a_deploy_posts_statuses_and_notifies_and_a_no_op_run_posts_nothing(
    app: App, notified: NotifyServer
) -> None:
    with_token(app)
    sha = app.heads[0]
    done = app.run(NOTIFY_URL=notified.url)
    assert done.code == 0, done.output
    assert statuses(app, sha) == [
        ("pending", "building"),
        ("pending", "deploying"),
        ("success", f"deployed as {app.deploy_ns}/{RELEASE} revision 1"),
    ]
    (body,) = notified.bodies
    assert (body["event"], body["sha"], body["repo"]) == ("deployed", sha, REPO)
    assert body["text"].startswith(f"ci-runner {RELEASE}: {REPO}@{sha[:7]} (main) deployed")

    asked = len(app.github.requests)
    again = app.run(NOTIFY_URL=notified.url)
    assert again.code == 0, again.output
    (head,) = app.github.requests[asked:]  # one free 304, no status
    assert head.status == 304
    assert len(statuses(app, sha)) == 3 and len(notified.bodies) == 1


@pytest.mark.helm
def test_failures_then_giving_up_are_posted_once_and_later_runs_stay_silent(
    app: App, emulator: Any, notified: NotifyServer
) -> None:
    with_token(app)
    emulator.jobs.behave("fail", labels=BUILD, termination_message="COPY failed")
    app.env.update(MAX_RETRIES="2", NOTIFY_URL=notified.url)
    sha = app.heads[0]
    assert [app.run().code for _ in range(2)] == [1, 1]
    posted = statuses(app, sha)
    assert [state for state, _ in posted] == ["pending", "failure", "pending", "failure"]
    assert posted[1][1].startswith("attempt 1/2 failed: build Job shop-build-")
    assert posted[3][1].startswith("given up after 2 attempts: build Job shop-build-")
    assert notified.events == ["failed", "given-up"]
    assert "COPY failed" in notified.bodies[1]["error"]

    later = app.run()
    assert later.code == 0 and "gave up" in later.stderr
    assert len(statuses(app, sha)) == 4 and notified.events == ["failed", "given-up"]


@pytest.mark.helm
def test_a_token_without_the_status_permission_warns_once_and_deploys(app: App) -> None:
    with_token(app)
    app.github.refuse("statuses")
    done = app.run()
    assert done.code == 0, done.output
    # One line for the statuses (the emulator's Kaniko reports no digest: another warning).
    (warning,) = [w for w in warnings(done) if "GitHub" in w]
    assert "GitHub refused posting a commit status (403" in warning
    assert "'Commit statuses: write' (classic token: repo:status)" in warning
    assert app.status()["lastDeployedSha"] == app.heads[0]


def test_statuses_can_be_turned_off(app: App, emulator: Any) -> None:
    with_token(app)
    emulator.jobs.behave("fail", labels=BUILD)
    assert app.run(GITHUB_STATUS="false").code == 1
    assert statuses(app, app.heads[0]) == []


# -- GitHub Deployments -----------------------------------------------------------------------


@pytest.mark.helm
def test_deployments_show_what_runs_where(app: App) -> None:
    with_token(app)
    app.env["GITHUB_DEPLOYMENTS"] = "true"
    assert app.run().code == 0
    newer = app.push({"README.md": "v2"})
    assert app.run().code == 0

    first, second = app.github.deployments(REPO)
    assert (second["sha"], second["environment"]) == (newer, f"{app.deploy_ns}/{RELEASE}")
    assert [s["state"] for s in second["statuses"]] == ["in_progress", "in_progress", "success"]
    assert second["statuses"][-1]["description"] == (
        f"deployed as {app.deploy_ns}/{RELEASE} revision 2"
    )
    # GitHub marks the earlier deployment to the environment inactive.
    assert first["statuses"][-1]["state"] == "inactive"


# -- GitHub App authentication ---------------------------------------------------------------


@pytest.mark.helm
def test_the_app_flow_from_jwt_to_kanikos_secret(app: App, emulator: Any) -> None:
    with_app(app)
    done = app.run()
    assert done.code == 0, done.output
    (token,) = app.github.app_tokens
    secret = kept_secret(emulator, app)
    assert kept_token(secret) == token
    assert EXPIRES in secret["metadata"]["annotations"]
    (job,) = app.build_jobs()
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
    api_calls = [r for r in app.github.requests if r.host == "api" and "/app/" not in r.path]
    assert {r.header("Authorization") for r in api_calls} == {f"Bearer {token}"}
    assert statuses(app, app.heads[0])[-1][0] == "success"

    asked = len(app.github.requests)
    again = app.run()  # the kept token is reused: the ETag still matches, a free 304
    assert again.code == 0, again.output
    (head,) = app.github.requests[asked:]
    assert head.status == 304 and app.github.app_tokens == [token]


@pytest.mark.helm
def test_an_installation_token_about_to_expire_is_renewed(app: App, emulator: Any) -> None:
    with_app(app)
    assert app.run().code == 0
    newer = app.push({"README.md": "v2"})
    # As 55 minutes would: the kept token has five minutes left, within the ten before its
    # expiry that a token is renewed (and GitHub has ended it, should the runner try it).
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat(timespec="seconds")
    with app.api() as api:
        client.CoreV1Api(api).patch_namespaced_secret(
            f"ci-runner-{RELEASE}-git", app.cicd, {"metadata": {"annotations": {EXPIRES: soon}}}
        )
    app.github.expire_app_tokens()
    done = app.run()
    assert done.code == 0, done.output
    first, second = app.github.app_tokens  # renewed, not reused
    assert first != second and kept_token(kept_secret(emulator, app)) == second
    assert app.status()["lastDeployedSha"] == newer


@pytest.mark.helm
def test_a_token_that_expires_during_a_held_build_is_renewed_before_reporting(
    app: App, emulator: Any
) -> None:
    with_app(app)
    # Tokens that live seconds, not an hour: under the runner's ten-minute margin each use asks
    # for a new one, and the held build outlives every token made before it ends.
    app.github.set_app_token_lifetime(5)
    emulator.jobs.behave("hold", labels=BUILD)
    running = app.start()
    job = app.wait_for_build_job()
    before = app.github.app_tokens
    deadline = time.monotonic() + 30
    while not all(app.github.app_token_expired(t) for t in before):  # a condition, polled
        assert time.monotonic() < deadline, "the tokens never expired"
        time.sleep(0.05)
    emulator.jobs.release(app.cicd, job)
    _, err = running.communicate(timeout=120)
    assert running.returncode == 0, err

    assert statuses(app, app.heads[0])[-1][0] == "success"
    assert [r.path for r in app.github.requests if r.status == 401] == []  # no token expired
    posted = [r for r in app.github.requests if "/statuses/" in r.path]
    success = posted[-1].header("Authorization") or ""
    assert success.removeprefix("Bearer ") not in before  # made after the build
    assert kept_token(kept_secret(emulator, app)) == app.github.app_tokens[-1]
    assert not any(t in err for t in app.github.app_tokens)


def test_a_key_github_rejects_is_exit_2_with_a_clear_message(app: App) -> None:
    with_app(app, key=rsa_pem("not the app's key"))
    done = app.run()
    assert done.code == 2, done.output
    assert "GitHub refused the App's JWT" in done.stderr
    assert "A JSON web token could not be decoded" in done.stderr
    assert app.github.app_tokens == [] and app.state() is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GIT_TOKEN": TOKEN}, "GIT_TOKEN and GITHUB_APP_* are both set"),
        ({"GITHUB_APP_ID": ""}, "given without GITHUB_APP_ID: a GitHub App needs all three"),
        ({"GITHUB_APP_PRIVATE_KEY": "ghp_not_a_key"}, "GITHUB_APP_PRIVATE_KEY is not a PEM"),
    ],
)
def test_credentials_that_cannot_work_are_exit_2(
    app: App, github: GitHubFake, emulator: Any, env: dict[str, str], message: str
) -> None:
    with_app(app)
    emulator.clear_requests()
    done = app.run(**env)
    assert done.code == 2, done.output
    assert message in done.stderr
    assert "PRIVATE KEY" not in done.output and "ghp_not_a_key" not in done.output
    assert emulator.requests == [] and github.requests == []


def test_a_dry_run_as_the_app_keeps_no_token(app: App, emulator: Any) -> None:
    with_app(app)
    emulator.clear_requests()
    done = app.run("--dry-run")
    assert done.code == 0, done.output
    assert f"commit:  {app.heads[0]}" in done.stdout
    assert len(app.github.app_tokens) == 1  # asked GitHub as the App, kept nothing
    writes = [r for r in emulator.requests if r.verb in {"create", "update", "patch", "delete"}]
    assert writes == [] and statuses(app, app.heads[0]) == []


@pytest.mark.helm
@pytest.mark.parametrize(
    ("key", "installation", "line"),
    [
        (None, INSTALLATION, (True, 0, "installation 77 token issued")),
        ("another key", INSTALLATION, (False, 2, "GitHub refused the App's JWT")),
        (None, 5, (False, 2, "no installation 5 of this App")),
    ],
)
def test_check_exchanges_the_apps_key_and_keeps_nothing(
    app: App, emulator: Any, key: str | None, installation: int, line: tuple[bool, int, str]
) -> None:
    with_app(app, key and rsa_pem(key))
    emulator.clear_requests()
    done = app.cli("check", "--output", "json", GITHUB_APP_INSTALLATION_ID=str(installation))
    report = {entry["item"]: entry for entry in json.loads(done.stdout)}
    entry = report[f"GitHub App {APP_ID}"]
    ok, code, message = line
    assert (entry["ok"], entry["exitCode"]) == (ok, code), entry
    assert message in entry["message"]
    if ok:
        assert "the App's installation token accepted" in report["GitHub credentials"]["message"]
        assert report[f"chart deploy/chart at {app.heads[0][:7]}"]["ok"]
    writes = [r for r in emulator.requests if r.verb in {"create", "update", "patch", "delete"}]
    assert writes == [] and app.state() is None
    assert all(token not in done.output for token in app.github.app_tokens)


@pytest.mark.helm
def test_a_skip_ci_commit_posts_no_status_and_sends_nothing(
    app: App, notified: NotifyServer
) -> None:
    with_token(app)
    app.env["NOTIFY_URL"] = notified.url
    assert app.run().code == 0
    skipped = app.push({"README.md": "docs"}, message="Fix a typo [skip ci]")
    done = app.run()
    assert done.code == 0 and "skipped" in done.stderr, done.output
    assert statuses(app, skipped) == []
    assert notified.events == ["deployed"]  # the first commit's, nothing for the skipped one
