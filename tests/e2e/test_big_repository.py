"""Big repositories (issue 18): a repository whose tarball inflates to 1.5 GiB deploys its small
chart, a gzip bomb in the chart is a bad commit, and a tarball that crawls or stalls is an
outage (exit 3, nothing counted). The runner's peak memory is read from the kernel (wait4's
``ru_maxrss``), not guessed."""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any

import pytest
from ci_runner.kube.state import ATTEMPTS

from tests.e2e.appkit import REPO, App, Run

GIB = 1024**3
MIB = 1024**2
PEAK_RSS = 400 * MIB
"""Well above the runner's own size (Python, the kubernetes client), far below what it would
take to hold any of the 1.5 GiB: memory stays bounded whatever the archive inflates to."""
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def measured_run(app: App, **env: str) -> tuple[Run, int]:
    """``ci-runner run`` to its end, and its peak resident memory in bytes (its own or a
    child's, whichever was larger: helm's too)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            app.command("run"), env={**app.env, **env}, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = Run(process.returncode, out.read().decode(), err.read().decode())
    return done, usage.ru_maxrss * 1024  # Linux counts KiB


def attempts(app: App) -> str | None:
    state = app.state()
    annotations: dict[str, str] = (state or {}).get("metadata", {}).get("annotations", {})
    return annotations.get(ATTEMPTS)


@pytest.mark.helm
def test_a_repository_inflating_to_one_and_a_half_gib_deploys_its_small_chart(app: App) -> None:
    sha = app.heads[0]
    app.github.inflate_tarball(REPO, sha, {"assets/video/zeros.bin": GIB + GIB // 2})
    done, peak = measured_run(app)
    assert done.code == 0, done.output
    assert app.status()["lastDeployedSha"] == sha
    assert peak < PEAK_RSS, f"peak RSS {peak // MIB} MiB"


def test_a_gzip_bomb_in_the_chart_is_a_bad_commit_refused_in_bounded_memory(
    app: App, emulator: Any
) -> None:
    sha = app.heads[0]
    app.github.inflate_tarball(REPO, sha, {"deploy/chart/files/zeros.bin": GIB + GIB // 2})
    emulator.clear_requests()
    done, peak = measured_run(app)
    assert done.code == 1, done.output
    assert "deploy/chart/files/zeros.bin', 1610612736 bytes" in done.stderr
    assert attempts(app) is not None  # the commit's fault: an attempt is counted
    assert app.build_jobs() == []
    written = {r.resource for r in emulator.requests if r.verb in WRITES}
    assert written <= {"configmaps", "leases", "events"}
    assert peak < PEAK_RSS, f"peak RSS {peak // MIB} MiB"


@pytest.mark.parametrize(
    ("rate", "env", "said"),
    [
        (1.0, {"TARBALL_TIMEOUT": "3"}, "took longer than 3s (TARBALL_TIMEOUT)"),  # a byte a second
        (0.1, {"API_TIMEOUT": "2"}, "stalled: no byte for 2s (API_TIMEOUT)"),  # a byte in 10 s
    ],
    ids=["trickles", "stalls"],
)
def test_a_tarball_that_crawls_or_stalls_is_an_outage_and_counts_nothing(
    app: App, emulator: Any, rate: float, env: dict[str, str], said: str
) -> None:
    app.github.trickle_next(r"legacy\.tar\.gz", bytes_per_second=rate)
    emulator.clear_requests()
    done = app.run(**env)
    assert done.code == 3, done.output
    assert said in done.stderr
    assert not [r for r in emulator.requests if r.verb in WRITES]
    assert attempts(app) is None and app.build_jobs() == []
