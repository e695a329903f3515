"""The test ground itself: the control plane reports the pinned release, and leaves no process
behind when whatever started it is SIGKILLed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster import build
from tests.e2e.appkit import App
from tests.e2e.real.realkit import kubectl, require_real

PLANE = os.environ.get("CI_RUNNER_TEST_PLANE_PID", "")


def test_version_is_the_pinned_release(app: App) -> None:
    require_real(app)
    if not PLANE:
        pytest.skip("a cluster of your own reports its own version")
    pinned = build.kubernetes_module(build.PINNED_KUBERNETES).version("k8s.io/kubernetes")
    version = kubectl(app, "version", "-o", "json").stdout
    assert f'"gitVersion": "{pinned}"' in version


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_sigkilled_launcher_leaves_no_process(tmp_path: Path) -> None:
    if not PLANE:
        pytest.skip("needs the control plane of tests/cluster")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "tests.cluster", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert launcher.stdout is not None
        for line in launcher.stdout:
            if line.startswith("logs in "):
                root = Path(line.split()[2].rstrip(";"))
                break
        else:
            raise AssertionError("the control plane did not start")
        children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
        pids = [int(pid) for pid in children]
        assert len(pids) == 5  # etcd, kube-apiserver, -controller-manager, -scheduler, kwok
    finally:
        launcher.send_signal(signal.SIGKILL)
        launcher.communicate()
    deadline = time.monotonic() + 10  # the kernel's PR_SET_PDEATHSIG acts at once
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)]
    shutil.rmtree(root)  # a SIGKILLed launcher cannot remove its folder; the processes are gone
