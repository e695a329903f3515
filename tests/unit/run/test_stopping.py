"""SIGTERM stops a run even when the SystemExit its handler raises is lost.

Python runs a signal handler between any two bytecodes, finalizers included, and drops an
exception raised in a finalizer ("Exception ignored in ..."). The handler also records the
signal, and the run's long waits raise it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from ci_runner import stopping
from ci_runner.errors import DeployError
from ci_runner.github.client import GitHub
from ci_runner.kube.build_watch import Watcher
from ci_runner.run.cycle import Built, Commit, Cycle
from ci_runner.run.plan import Action, Plan

from tests.support.settings import app_settings

SETTINGS = app_settings()

HEAD = Commit("a" * 40, None, "new commit")


@pytest.fixture(autouse=True)
def no_stop_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stopping, "_signal", None)


LOST_IN_A_FINALIZER = textwrap.dedent(
    """
    import os, signal
    from ci_runner import cli, stopping

    signal.signal(signal.SIGTERM, cli._terminate)

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs in here

    Finalized()
    print("still running", flush=True)
    stopping.check()
    print("not stopped", flush=True)
    """
)


def test_a_sigterm_lost_in_a_finalizer_is_raised_again_by_the_next_check() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOST_IN_A_FINALIZER],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=60,
    )
    assert "Exception ignored" in done.stderr  # what Python does with the handler's SystemExit
    assert done.stdout == "still running\n"
    assert done.returncode == 128 + signal.SIGTERM


class HeldBuild:
    """A Kubernetes whose build Job runs for ever, and which counts the watches of it."""

    def __init__(self) -> None:
        self.watches = 0

    def read(self, *args: Any) -> dict[str, Any]:
        return {"metadata": {"name": "b", "resourceVersion": "7"}, "status": {"active": 1}}

    def query(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return []

    def ensure_namespace(self, *args: Any) -> bool:
        return False  # the deploy namespace exists

    def save(self, kind: Any, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "8"}}  # the Lease

    def watch(self, *args: Any) -> list[tuple[str, dict[str, Any]]]:
        self.watches += 1
        assert self.watches == 1, "watched on after the SIGTERM"
        stopping.request(signal.SIGTERM)  # as if the SIGTERM came during this watch, and was lost
        return []


def held_cycle() -> Cycle:
    """A cycle over HeldBuild; GitHub is never asked."""
    with GitHub(SETTINGS) as github:
        return Cycle(SETTINGS, HeldBuild(), github, force=False)  # type: ignore[arg-type]


def test_the_build_watch_stops_at_its_next_look_after_a_sigterm() -> None:
    watcher = Watcher(HeldBuild(), SETTINGS, "b")  # type: ignore[arg-type]
    with pytest.raises(SystemExit) as stopped:
        watcher.wait()
    assert stopped.value.code == 128 + signal.SIGTERM


def test_a_sigterm_lost_during_the_build_starts_no_helm(monkeypatch: pytest.MonkeyPatch) -> None:
    the_cycle = held_cycle()

    def built(commit: Commit, plan: Plan) -> Built:
        stopping.request(signal.SIGTERM)  # as if it came during the build, and was lost
        return Built()

    def deployed(*args: Any) -> None:
        raise AssertionError("helm was started after the SIGTERM")

    monkeypatch.setattr(the_cycle, "build", built)
    monkeypatch.setattr(the_cycle, "deploy", deployed)
    plan = Plan(Action.BUILD_AND_DEPLOY, "a" * 40, 1, "new commit")
    with pytest.raises(SystemExit) as stopped:
        the_cycle.act(HEAD, plan, None)  # type: ignore[arg-type]
    assert stopped.value.code == 128 + signal.SIGTERM


def test_a_helm_our_sigterm_stopped_is_no_failed_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    the_cycle = held_cycle()

    class StoppedHelm:
        def run(self, orphaned_helm: object) -> int:
            stopping.request(signal.SIGTERM)  # it reached helm; the run's SystemExit was lost
            raise DeployError("helm upgrade of shop failed: context canceled")

    counted: list[object] = []
    monkeypatch.setattr(the_cycle.report, "deploying", lambda sha: None)
    monkeypatch.setattr(the_cycle, "fail", lambda *args: counted.append(args))
    plan = Plan(Action.DEPLOY, "a" * 40, 1, "built already")
    with pytest.raises(SystemExit) as stopped:
        the_cycle.deploy(HEAD, plan, StoppedHelm())  # type: ignore[arg-type]
    assert stopped.value.code == 128 + signal.SIGTERM
    assert counted == []


# A SIGTERM that arrives while the CLI's imports run (most of an idle run's time).
SIGTERM_DURING_IMPORTS = """
import os, signal, sys
import importlib.abc

class SignalOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "ci_runner.cli":
            os.kill(os.getpid(), signal.SIGTERM)  # as the kubelet's, mid-import
        return None

sys.meta_path.insert(0, SignalOnImport())
from ci_runner.__main__ import main
sys.argv = ["ci-runner", "run"]
main()
print("the run went on")
"""


def test_a_sigterm_during_the_first_imports_stops_the_run() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SIGTERM_DURING_IMPORTS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "the run went on" not in done.stdout
