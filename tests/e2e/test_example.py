"""The README's example app (examples/hello) deployed by ``ci-runner run``, as the walkthrough
does it: its files are a repository's, CHART_PATH=chart. Kaniko's build is the emulator's Job
(no image is built here), and helm installs the example's own chart."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e.appkit import IMAGE, RELEASE, App
from tests.support.example import CHART_PATH, example_files
from tests.support.kube_emulator import Emulator


@pytest.mark.helm
def test_the_readme_example_builds_and_deploys(app: App, emulator: Emulator) -> None:
    # On a real cluster the example's pod would need the image no build here pushes: emulator.
    sha = app.push(example_files(), message="the example app")

    done = app.run(CHART_PATH=CHART_PATH)

    assert done.code == 0, done.output
    assert f"deployed {sha[:7]}" in done.stderr
    (job,) = app.build_jobs()
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--dockerfile=Dockerfile" in args
    assert any(a.endswith(f"#{sha}") for a in args), args
    assert app.deployed_image() == f"{IMAGE}:{sha}"
    kubectl = ["kubectl", "get", "service", RELEASE, "-n", app.deploy_ns, "-o", "json"]
    got = subprocess.run(kubectl, env=app.env, capture_output=True, text=True, check=True)
    service = json.loads(got.stdout)
    assert service["spec"]["ports"][0]["port"] == 80
    (release,) = app.helm("list")
    assert (release["name"], release["chart"]) == (RELEASE, "hello-0.1.0")
