"""The README's example app (examples/hello) deployed by ``ci-runner run``, as the walkthrough
does it: its files are a repository's, CHART_PATH=chart. Kaniko's build is the emulator's Job
(no image is built here), and helm installs the example's own chart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.appkit import IMAGE, RELEASE, App
from tests.support.example import CHART_PATH, example_files
from tests.support.kube_emulator import Emulator


@pytest.mark.helm
def test_the_readme_example_builds_and_deploys(
    app: App, emulator: Emulator, tmp_path: Path
) -> None:
    # On a real cluster the example's pod would need the image no build here pushes: emulator.
    sha = app.push(example_files(), message="the example app")

    done = app.run(CHART_PATH=CHART_PATH)

    assert done.code == 0, done.output
    assert f"deployed {sha[:7]}" in done.stderr
    (job,) = app.build_jobs()
    pod = job["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert "--dockerfile=Dockerfile" in args
    assert "--context=dir:///workspace" in args

    # The init container's command, run here as a kubelet would run it (its env as the Job
    # gives it, /workspace a folder of ours): Kaniko would find the example's Dockerfile.
    (fetch,) = pod["initContainers"]
    workspace = tmp_path / "workspace"
    command = [a.replace("/workspace", str(workspace)) for a in fetch["args"]]
    command = [a for a in command if not a.startswith("--message-file")]
    env = {e["name"]: e["value"] for e in fetch["env"] if "value" in e}
    fetched = subprocess.run(
        [sys.executable, "-m", "ci_runner", *command],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert f"--sha={sha}" in command
    assert (workspace / "Dockerfile").read_text() == example_files()["Dockerfile"]
    assert app.deployed_image() == f"{IMAGE}:{sha}"
    kubectl = ["kubectl", "get", "service", RELEASE, "-n", app.deploy_ns, "-o", "json"]
    got = subprocess.run(kubectl, env=app.env, capture_output=True, text=True, check=True)
    service = json.loads(got.stdout)
    assert service["spec"]["ports"][0]["port"] == 80
    (release,) = app.helm("list")
    assert (release["name"], release["chart"]) == (RELEASE, "hello-0.1.0")
