"""A run leaves nothing on TMPDIR (the pod's /tmp emptyDir, a laptop's /tmp): the commit's
tarball and its chart are there only while the run needs them, whether it deploys, refuses the
commit, or is stopped by SIGTERM mid-build."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.appkit import BUILD, App


def left_on_tmpdir(app: App) -> list[str]:
    tmpdir = Path(app.env["TMPDIR"])
    return sorted(str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*"))


@pytest.mark.helm
def test_a_deploy_leaves_nothing_on_tmpdir(app: App) -> None:
    done = app.run()
    assert done.code == 0, done.output
    assert "deployed" in done.stderr
    assert left_on_tmpdir(app) == []


def test_a_refused_commit_leaves_nothing_on_tmpdir(app: App) -> None:
    app.push({"deploy/chart/Chart.yaml": None})
    done = app.run()
    assert done.code == 1, done.output
    assert "holds no Chart.yaml" in done.stderr
    assert left_on_tmpdir(app) == []


def test_sigterm_mid_build_leaves_nothing_on_tmpdir(app: App, emulator: Any) -> None:
    emulator.jobs.behave("hold", labels=BUILD)
    stopped = app.start()
    job = app.wait_for_build_job()
    err = app.terminate(stopped)
    assert stopped.returncode == 128 + signal.SIGTERM, err
    assert left_on_tmpdir(app) == []
    emulator.jobs.release(app.cicd, job)
