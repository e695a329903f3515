"""The helm a deploy runs: how many processes it starts, and a release a killed helm left
pending, whichever operation it was stopped in."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.appkit import APP_FILES, IMAGE, MIGRATION, RELEASE, App

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
def test_a_deploy_runs_helm_three_times_its_version_the_template_and_the_upgrade(
    app: App, tmp_path: Path
) -> None:
    """The template (offline, before the build) finds a chart's template error before its
    build is paid for."""
    log = log_helm_commands(app, tmp_path)
    assert app.run().code == 0
    assert subcommands(log) == ["version", "template", "upgrade"]

    app.push({"README.md": "v2"}, message="second")
    assert app.run().code == 0
    assert subcommands(log) == ["version", "template", "upgrade"] * 2


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
    assert ran[:4] == ["version", "template", "upgrade", "status"]
    assert "uninstall" in ran
    assert ran[-1] == "upgrade"


# -- helm dies with the runner, and is checked before anything is written ----------------------


def helm_children(pid: int) -> list[int]:
    """The helm processes ``pid`` started (its direct children named helm)."""
    tasks = Path(f"/proc/{pid}/task")
    found = []
    for task in tasks.iterdir():
        for child in (task / "children").read_text().split():
            if Path(f"/proc/{child}/comm").read_text().strip() == "helm":
                found.append(int(child))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for init to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.helm
def test_helm_does_not_outlive_a_runner_killed_mid_upgrade(app: App, emulator: Any) -> None:
    assert app.run().code == 0
    running, held, _ = app.start_a_slow_upgrade()  # helm waits for the held chart Job
    helm = helm_children(running.pid)
    assert len(helm) == 1, helm
    running.kill()  # SIGKILL the runner alone, as an OOM kill does; helm is in its own session
    running.communicate()
    deadline = time.monotonic() + 2
    while alive(helm[0]) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a condition with a deadline, not waiting for time to pass
    assert not alive(helm[0]), "helm still runs 2 s after its runner was killed"
    emulator.jobs.release(app.deploy_ns, held)


@pytest.mark.helm
@pytest.mark.emulator_only
def test_a_run_without_a_usable_helm_writes_nothing(
    app: App, emulator: Any, tmp_path: Path
) -> None:
    assert app.run().code == 0
    app.push({"README.md": "v2"}, message="second")
    empty = tmp_path / "no-helm"
    empty.mkdir()
    old = tmp_path / "old-helm"
    old.mkdir()
    (old / "helm").write_text("#!/bin/sh\necho v3.10.0\n")
    (old / "helm").chmod(0o755)
    for path, said in [(empty, "helm is not on PATH"), (old, "helm v3.10.0 is not supported")]:
        emulator.clear_requests()
        refused = app.run(PATH=str(path))
        assert refused.code == 2, refused.output
        assert said in refused.stderr
        writes = [r.method + " " + r.path for r in emulator.requests if r.method != "GET"]
        assert writes == []  # no Lease, no build Job, no state
    assert app.run().code == 0  # with helm back the commit deploys, nothing counted against it
    assert app.status()["lastDeployedSha"] == app.heads[-1]


@pytest.mark.helm
def test_a_manual_helm_upgrade_in_flight_is_left_alone(
    app: App, emulator: Any, tmp_path: Path
) -> None:
    assert app.run().code == 0
    # A person upgrades the release by hand, with a chart Job the emulator holds: their helm
    # waits for it, and the release is pending-upgrade meanwhile.
    chart = tmp_path / "chart"
    for path, text in {**APP_FILES, "deploy/chart/templates/migrate.yaml": MIGRATION}.items():
        if path.startswith("deploy/chart/"):
            (chart / path.removeprefix("deploy/chart/")).parent.mkdir(parents=True, exist_ok=True)
            (chart / path.removeprefix("deploy/chart/")).write_text(text)
    emulator.jobs.behave("hold", name=f"{RELEASE}-migrate")
    manual = subprocess.Popen(
        ["helm", "upgrade", RELEASE, str(chart), "-n", app.deploy_ns, "--wait", "--wait-for-jobs"],
        env=app.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    app.started.append(manual)
    held = app.wait_for_job(app.deploy_ns)
    assert app.helm("status", RELEASE)["info"]["status"] == "pending-upgrade"

    sha = app.push({"README.md": "v2"}, message="second")
    waiting = app.run()
    assert waiting.code == 3, waiting.output  # not a failed attempt of the commit
    assert "left alone" in waiting.stderr
    assert manual.poll() is None, "the person's helm was disturbed"
    assert app.helm("status", RELEASE)["info"]["status"] == "pending-upgrade"  # no rollback

    emulator.jobs.release(app.deploy_ns, held)
    _, err = manual.communicate(timeout=60)
    assert manual.returncode == 0, err
    done = app.run()
    assert done.code == 0, done.output
    assert app.deployed_image() == f"{IMAGE}:{sha}"
