"""``ci-runner status`` and what a run tells a person: logs, Events, warnings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.appkit import RELEASE, App


def test_status_before_any_run_says_there_is_no_state_with_exit_2(app: App) -> None:
    status = app.status()
    assert status["phase"] == "none"
    assert status["lastDeployedSha"] is None
    assert status["attempts"] == 0
    assert status["maxRetries"] is None  # only the runner's own record says how many
    assert status["release"] == RELEASE
    table = app.cli("status")
    assert table.code == 2  # a typo in RELEASE reads the same: not "all is well"
    assert table.stdout.strip() == f"no state for release {RELEASE} in namespace {app.cicd}"
    assert f"Error: release {RELEASE} has no state ConfigMap ci-runner-{RELEASE}" in table.stderr


@pytest.mark.helm
def test_status_table_and_events_after_a_deploy(app: App, emulator: Any) -> None:
    assert app.run().code == 0
    table = app.cli("status")
    assert table.code == 0
    lines = dict(line.split(None, 1) for line in table.stdout.strip().splitlines())
    assert lines["phase"] == "deployed"
    assert lines["lastDeployedSha"] == app.heads[0]
    assert lines["pendingSha"] == "-"
    assert lines["maxRetries"] == "3"
    # -o text|json as `check` says it; `table`, its first name, still works
    for output in ("text", "table"):
        assert app.cli("status", "--output", output).stdout == table.stdout
    events = emulator.list("v1", "events", app.cicd)
    assert [(e["reason"], e["type"]) for e in events] == [("Deployed", "Normal")]
    assert events[0]["involvedObject"]["name"] == f"ci-runner-{RELEASE}"


def test_a_typod_setting_is_named_with_the_one_it_resembles(app: App) -> None:
    done = app.run("--dry-run", MAX_RETRY="5", REGISTRY_SECERT="push")
    assert done.code == 0, done.output
    assert "MAX_RETRY is no setting and is ignored: did you mean MAX_RETRIES?" in done.stderr
    assert (
        "REGISTRY_SECERT is no setting and is ignored: did you mean REGISTRY_SECRET?" in done.stderr
    )
    assert done.stderr.count("is no setting") == 2  # the test's own environment raises none


def test_old_loop_settings_are_ignored_with_a_warning(app: App) -> None:
    done = app.run("--dry-run", INTERVAL="60", STATE_PATH="/data/state.json")
    assert done.code == 0
    assert "INTERVAL is ignored: the CronJob's schedule" in done.stderr
    assert "STATE_PATH is ignored: state lives in the ConfigMap" in done.stderr


def test_json_logs_are_one_object_per_line(app: App) -> None:
    done = app.run("--dry-run", LOG_FORMAT="json")
    assert done.code == 0
    records = [json.loads(line) for line in done.stderr.strip().splitlines()]
    assert records and all({"time", "level", "message"} <= r.keys() for r in records)


def test_python_dash_m_and_the_console_script_agree(app: App) -> None:
    module = app.cli("--version")
    script = Path(sys.executable).parent / "ci-runner"  # what `pip install .` put on PATH
    installed = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert module.code == 0
    assert module.stdout.startswith("ci-runner, version ")
    assert installed.stdout == module.stdout


@pytest.mark.helm
def test_history_lists_the_deploys_newest_first(app: App) -> None:
    assert "no deploys recorded" in app.cli("history").stdout
    assert app.run().code == 0
    second = app.push({"README.md": "two"})
    assert app.run().code == 0
    assert app.run("--force").code == 0
    done = app.cli("history", "--output", "json")
    assert done.code == 0, done.output
    deploys = json.loads(done.stdout)
    assert [(d["sha"], d["revision"], d["how"]) for d in deploys] == [
        (second, 3, "forced"),
        (second, 2, "build"),
        (app.heads[0], 1, "build"),
    ]
    text = app.cli("history").stdout.splitlines()
    assert text[0].startswith(f"{second[:12]}  revision 3  ")
    assert len(text) == 3


@pytest.mark.helm
def test_a_pinned_release_deploys_nothing_until_unpinned(app: App) -> None:
    assert app.run().code == 0
    first = app.heads[0]
    pinned = app.cli("pin")
    assert pinned.code == 0, pinned.output
    assert f"pinned at {first[:7]}" in pinned.stdout

    head = app.push({"README.md": "new"})
    done = app.run()
    assert done.code == 0, done.output
    assert f"pinned at {first[:7]}" in done.stderr and "`ci-runner unpin`" in done.stderr
    assert first in app.deployed_image()
    forced = app.run("--force")
    assert forced.code == 2, forced.output
    assert "run --force refused: pinned at" in forced.stderr
    status = app.status()
    assert (status["phase"], status["pinnedSha"]) == ("pinned", first)
    with app.api() as api:
        events = client.CoreV1Api(api).list_namespaced_event(app.cicd).items
    assert "Pinned" in [e.reason for e in events]  # kubectl describe configmap shows it

    assert app.cli("unpin").code == 0
    done = app.run()
    assert done.code == 0, done.output
    assert head in app.deployed_image()
    assert app.status()["pinnedSha"] is None


def test_pinning_before_any_deploy_is_exit_2(app: App) -> None:
    done = app.cli("pin")
    assert done.code == 2, done.output
    assert "nothing is deployed for release shop yet" in done.stderr


def _helm(app: App, *args: str) -> None:
    subprocess.run(
        ["helm", *args, "--namespace", app.deploy_ns], env=app.env, capture_output=True,
        text=True, check=True, timeout=120,
    )  # fmt: skip


@pytest.mark.helm
def test_a_release_changed_by_hand_is_drift_with_the_command_that_resolves_it(app: App) -> None:
    first = app.heads[0]
    assert app.run().code == 0
    assert app.status()["drift"] is None  # as the runner left it
    second = app.push({"README.md": "v2"})
    assert app.run().code == 0
    assert app.status()["drift"] is None

    _helm(app, "rollback", RELEASE, "1")  # someone's hand: revision 3, the first image again
    drift = app.status()["drift"]
    assert drift.startswith(
        f"release {app.deploy_ns}/{RELEASE} is at helm revision 3 (deployed), the runner's last "
        f"deploy was revision 2 ({second[:7]}): changed by hand"
    ), drift
    assert f"its values no longer name {second[:7]}" in drift
    assert f"`ci-runner rollback --to {second[:7]}`" in drift
    shown = app.cli("status")
    assert "changed by hand" in shown.stdout, shown.output

    # The fix it names: the recorded deploy again, and no drift left.
    back = app.cli("rollback", "--to", second[:7])
    assert back.code == 0, back.output
    assert app.status()["drift"] is None
    assert first != second

    _helm(app, "uninstall", RELEASE)
    gone = app.status()["drift"]
    assert gone.startswith(f"release {app.deploy_ns}/{RELEASE} is not installed"), gone


def test_status_of_a_namespace_that_does_not_exist_is_exit_2_naming_it(
    app: App, emulator: Any
) -> None:
    """A GET of the ConfigMap is 404 either way; only then is the namespace asked about."""
    for command in ("status", "history"):
        done = app.cli(command, CICD_NS="no-such-cicd")
        assert done.code == 2, done.output
        assert "CICD_NS namespace 'no-such-cicd' does not exist" in done.stderr, done.output
    # RBAC cannot name a namespace that does not exist: nothing to replay against the Roles.
    emulator.clear_requests()
