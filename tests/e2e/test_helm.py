"""The helm a deploy runs: how many processes it starts, and a release a killed helm left
pending, whichever operation it was stopped in."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.appkit import IMAGE, RELEASE, App

# Logs each helm command line, then becomes the real helm (same pid, so signals still reach it).
WRAPPER = """\
#!/bin/sh
printf '%s\\n' "$*" >> {log}
exec {real} "$@"
"""


def log_helm_commands(app: App, where: Path) -> Path:
    """Put a ``helm`` first on the runner's PATH that logs every command; the log's path."""
    real = shutil.which("helm", path=app.env["PATH"])
    assert real is not None
    log = where / "helm-commands.log"
    wrapper = where / "bin" / "helm"
    wrapper.parent.mkdir()
    wrapper.write_text(WRAPPER.format(log=shlex.quote(str(log)), real=shlex.quote(real)))
    wrapper.chmod(0o755)
    app.env["PATH"] = f"{wrapper.parent}:{app.env['PATH']}"
    return log


def subcommands(log: Path) -> list[str]:
    """The helm subcommand of each logged command line, in order."""
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.helm
def test_a_deploy_runs_helm_twice_its_version_and_the_upgrade(app: App, tmp_path: Path) -> None:
    log = log_helm_commands(app, tmp_path)
    assert app.run().code == 0
    assert subcommands(log) == ["version", "upgrade"]

    app.push({"README.md": "v2"}, message="second")
    assert app.run().code == 0
    assert subcommands(log) == ["version", "upgrade"] * 2


@pytest.mark.helm
def test_a_first_install_left_pending_is_uninstalled_then_installed(
    app: App, emulator: Any, tmp_path: Path
) -> None:
    killed, held, sha = app.start_a_slow_upgrade()  # helm waits: the release is pending
    app.kill_like_a_node_loss(killed)
    assert app.helm("status", RELEASE)["info"]["status"] == "pending-install"

    app.expire_lease()
    emulator.jobs.release(app.deploy_ns, held)
    emulator.jobs.behave("succeed", name=f"{RELEASE}-migrate")
    log = log_helm_commands(app, tmp_path)
    recovered = app.run()
    ran = subcommands(log)
    assert recovered.code == 0, recovered.output
    assert "was left pending-install" in recovered.stderr
    assert app.deployed_image() == f"{IMAGE}:{sha}"
    assert app.helm("status", RELEASE)["info"]["status"] == "deployed"
    # helm refused the upgrade; only then was the status asked and the release uninstalled.
    assert ran[:3] == ["version", "upgrade", "status"]
    assert "uninstall" in ran
    assert ran[-1] == "upgrade"
