"""``ci-runner run`` end to end, for the commits that are not to be built: ``[skip ci]`` and its
kin in the head's message (and, with WATCH_PATHS, commits that change nothing watched)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e.appkit import IMAGE, RELEASE, App

WRITES = {"create", "update", "patch", "delete", "deletecollection"}
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-settings}
data: {greeting: hello}
"""


def deployed_configmaps(app: App, emulator: Any) -> list[str]:
    return [c["metadata"]["name"] for c in emulator.list("v1", "configmaps", app.deploy_ns)]


@pytest.mark.helm
def test_a_skip_ci_commit_is_recorded_not_built_and_ships_with_the_next_one(
    app: App, emulator: Any
) -> None:
    first = app.heads[0]
    assert app.run().code == 0
    skipped = app.push(
        {"deploy/chart/templates/settings.yaml": CONFIGMAP},
        message="Add the settings ConfigMap\n\nNot worth a deploy alone. [skip ci]",
    )

    done = app.run()
    assert done.code == 0, done.output
    assert f"skipped {skipped[:7]} (its message says [skip ci])" in done.stderr
    assert len(app.build_jobs()) == 1  # no Job for it
    assert [r["revision"] for r in app.helm("history", RELEASE)] == [1]  # no revision
    status = app.status()
    assert (status["lastDeployedSha"], status["lastSkippedSha"]) == (first, skipped)
    state = app.state()
    assert state is not None and state["data"]["lastSkippedSha"] == skipped

    # Later runs on the skipped head: one Kubernetes read, a free 304, nothing written.
    emulator.clear_requests()
    remaining, calls = app.github.rate_limit_remaining, len(app.github.requests)
    again = app.run()
    assert again.code == 0, again.output
    assert "was skipped" in again.stderr
    assert len(emulator.requests) <= 2, emulator.requests
    assert not [r for r in emulator.requests if r.verb in WRITES]
    (head_read,) = app.github.requests[calls:]
    assert head_read.status == 304
    assert app.github.rate_limit_remaining == remaining

    # The next commit is built from its own tree: the skipped change ships with it.
    newer = app.push({"README.md": "v2"}, message="Say more")
    shipped = app.run()
    assert shipped.code == 0, shipped.output
    assert app.deployed_image() == f"{IMAGE}:{newer}"
    assert f"{RELEASE}-settings" in deployed_configmaps(app, emulator)
    assert app.status()["lastDeployedSha"] == newer


@pytest.mark.parametrize("marker", ["[ci skip]", "[no ci]", "[skip deploy]", "[Skip CI]"])
def test_every_skip_marker_is_honoured_even_before_the_first_deploy(
    app: App, emulator: Any, marker: str
) -> None:
    sha = app.push({"docs/guide.md": "how to"}, message=f"Document the setup {marker}")
    emulator.clear_requests()
    done = app.run()
    assert done.code == 0, done.output
    assert f"skipped {sha[:7]}" in done.stderr
    assert app.build_jobs() == []
    status = app.status()
    assert (status["lastDeployedSha"], status["lastSkippedSha"]) == (None, sha)
    written = {r.resource for r in emulator.requests if r.verb in WRITES}
    assert written <= {"configmaps", "leases", "events"}


def test_a_dry_run_says_it_would_skip_and_writes_nothing(app: App, emulator: Any) -> None:
    sha = app.push({"README.md": "typo"}, message="Fix a typo [skip ci]")
    emulator.clear_requests()
    done = app.run("--dry-run")
    assert done.code == 0, done.output
    assert f"skipped {sha[:7]} (its message says [skip ci])" in done.stdout
    assert "dry run: nothing was written" in done.stdout
    assert not [r for r in emulator.requests if r.verb in WRITES]
    assert app.state() is None


@pytest.mark.helm
def test_force_builds_and_deploys_a_skipped_head(app: App) -> None:
    sha = app.push({"README.md": "x"}, message="Wording [skip ci]")
    assert "skipped" in app.run().stderr
    forced = app.run("--force")
    assert forced.code == 0, forced.output
    assert app.deployed_image() == f"{IMAGE}:{sha}"
    assert len(app.build_jobs()) == 1


@pytest.mark.helm
def test_an_etag_of_the_old_bare_sha_read_is_replaced_once_then_runs_are_free(
    app: App, emulator: Any
) -> None:
    """The runner used to read the head as a bare SHA; that answer's stored ETag never matches
    the JSON read's, so the first run after an upgrade stores the new one (one write)."""
    assert app.run().code == 0
    with app.api() as api:
        client.CoreV1Api(api).patch_namespaced_config_map(
            f"ci-runner-{RELEASE}",
            app.cicd,
            {"metadata": {"annotations": {"ci-runner.io/github-etag": '"from-the-sha-read"'}}},
        )
    upgraded = app.run()
    assert upgraded.code == 0, upgraded.output
    assert app.github.requests[-1].status == 200
    state = app.state()
    assert state is not None
    assert state["metadata"]["annotations"]["ci-runner.io/github-etag"] != '"from-the-sha-read"'

    emulator.clear_requests()
    remaining = app.github.rate_limit_remaining
    again = app.run()
    assert again.code == 0, again.output
    assert app.github.requests[-1].status == 304
    assert app.github.rate_limit_remaining == remaining
    assert len(emulator.requests) <= 2, emulator.requests
    assert not [r for r in emulator.requests if r.verb in WRITES]


# -- WATCH_PATHS ----------------------------------------------------------------------------

WATCH = {"WATCH_PATHS": "src/**,Dockerfile"}


def compares(app: App) -> list[Any]:
    return [r for r in app.github.requests if "/compare/" in r.path]


@pytest.mark.helm
def test_watch_paths_skip_a_docs_only_commit_and_build_a_matching_one(
    app: App, emulator: Any
) -> None:
    app.env.update(WATCH)
    first = app.heads[0]
    nothing_deployed = app.run()  # nothing deployed yet: built, without a comparison
    assert nothing_deployed.code == 0, nothing_deployed.output
    assert compares(app) == []

    docs = app.push({"docs/guide.md": "how to", "README.md": "more"}, message="Document it")
    skipped = app.run()
    assert skipped.code == 0, skipped.output
    assert f"skipped {docs[:7]} (no file under WATCH_PATHS or CHART_PATH changed" in skipped.stderr
    (compare,) = compares(app)
    assert compare.path == f"/repos/acme/shop/compare/{first}...{docs}"
    assert len(app.build_jobs()) == 1
    assert app.status()["lastSkippedSha"] == docs

    emulator.clear_requests()
    assert app.run().code == 0
    assert not [r for r in emulator.requests if r.verb in WRITES]
    assert len(compares(app)) == 1  # a skipped head is not compared again

    code = app.push({"src/app/main.py": "print('hi')"}, message="Greet")
    built = app.run()
    assert built.code == 0, built.output
    assert app.deployed_image() == f"{IMAGE}:{code}"
    assert len(app.build_jobs()) == 2
    (_, again) = compares(app)
    assert again.path == f"/repos/acme/shop/compare/{first}...{code}"  # from the deployed one


@pytest.mark.helm
def test_a_change_to_the_chart_always_counts(app: App) -> None:
    app.env.update(WATCH)
    assert app.run().code == 0
    chart = app.push({"deploy/chart/values.yaml": "image: {repository: x, tag: y}\nreplicas: 1\n"})
    done = app.run()
    assert done.code == 0, done.output
    assert app.deployed_image() == f"{IMAGE}:{chart}"


@pytest.mark.helm
@pytest.mark.parametrize("doubt", ["300 files", "compare fails", "base gone"])
def test_a_comparison_in_doubt_builds(app: App, emulator: Any, doubt: str) -> None:
    app.env.update(WATCH)
    assert app.run().code == 0
    if doubt == "300 files":
        head = app.push({f"docs/generated/{i:03}.md": str(i) for i in range(300)})
    else:
        head = app.push({"docs/guide.md": "how to"})
    if doubt == "compare fails":
        app.github.fail_next("GET", "/compare/", 500)
    if doubt == "base gone":  # as after a force push: GitHub no longer has the deployed commit
        app.github.fail_next("GET", "/compare/", 404, body={"message": "Not Found"})
    done = app.run()
    assert done.code == 0, done.output
    assert app.deployed_image() == f"{IMAGE}:{head}"
    assert len(compares(app)) == 1
    if doubt != "300 files":
        assert "cannot be checked" in done.stderr
