"""The build context fetched by the build pod's init container (issue 17, item 4): whose fault
a failed fetch is (the commit's archive: a counted attempt; GitHub: an outage), and that the
token reaches that container only. The emulator plays the kubelet: the init container's exit
code and termination message are those ``ci-runner fetch-context`` leaves (the unit tests of
tests/unit/run/test_fetch_context.py run the real command against the GitHub fake)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.appkit import BUILD, App

REFUSED = (
    "the tarball of acme/shop@0123456 has a link or special file in the build context: "
    "'passwd' (a symlink must point inside it)"
)
UNREACHABLE = "GitHub is unreachable at https://api.github.com: ConnectionError"


def attempts(app: App) -> str:
    state = app.state()
    annotations = (state or {}).get("metadata", {}).get("annotations", {})
    return str(annotations.get("ci-runner.io/attempts", "0"))


def test_an_archive_the_init_container_refuses_is_a_failed_attempt(app: App, emulator: Any) -> None:
    emulator.jobs.behave("init-fail", labels=BUILD, exit_code=1, termination_message=REFUSED)
    done = app.run()
    assert done.code == 1, done.output
    expected = f"fetching the build context failed (exit code 1): {REFUSED}"
    assert expected in done.stderr
    assert "attempt 1/3" in done.stderr
    annotations = (app.state() or {})["metadata"]["annotations"]
    assert expected in annotations["ci-runner.io/last-error"]
    # Kaniko never ran: no build log is read or quoted.
    assert "build pod log" not in done.stderr


@pytest.mark.helm
def test_github_failing_the_init_container_is_an_outage_and_counts_no_attempt(
    app: App, emulator: Any
) -> None:
    emulator.jobs.behave("init-fail", labels=BUILD, exit_code=3, termination_message=UNREACHABLE)
    done = app.run()
    assert done.code == 3, done.output
    assert f"fetching the build context failed (exit code 3): {UNREACHABLE}" in done.stderr
    assert "attempt" not in done.stderr
    assert attempts(app) == "0"
    (failed,) = app.build_jobs()

    # GitHub is back: the next run builds anew (the failed Job is never adopted) and deploys.
    emulator.jobs.behave("succeed", labels=BUILD)
    again = app.run()
    assert again.code == 0, again.output
    assert app.status()["lastDeployedSha"] == app.heads[-1]
    names = {j["metadata"]["name"] for j in app.build_jobs()}
    assert len(names) == 2 and failed["metadata"]["name"] in names
