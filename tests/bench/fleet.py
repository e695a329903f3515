"""``python -m tests.bench fleet --apps N``: one idle ``ci-runner fleet`` run against N idle
single runs (``ci-runner run``, one per app, as N CronJobs would start them), and one fleet run
with 5 apps changed.

Against the emulator and the GitHub fake of the tests: N CronJobs as the chart renders them (the
settings in their pod templates), N repositories, N state ConfigMaps (each head deployed, with the
ETag a single run keeps), the fleet's token Secret and record. Each command is a whole process,
measured as the other benches measure (``measure.run``). The single runs are summed (wall and CPU)
and their peak is the largest; the fleet's are medians over ``--rounds``. Nothing here asserts a
time, and CI does not run it.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.bench import measure
from tests.bench.world import JOB_DIR, TOKEN
from tests.e2e.appkit import APP_FILES, IMAGE
from tests.support.github_fake import GitHubFake
from tests.support.kube_emulator import Emulator

NAMESPACE = "bench"
FLEET_TOKEN = "bench-fleet-token-0123456789"
SETTINGS_OF_ALL = {"CICD_NS": NAMESPACE, "API_TIMEOUT": "10", "CREATE_NAMESPACE": "false"}


@dataclass(frozen=True)
class Counted:
    """One command's cost and what it asked of the outside world."""

    name: str
    wall: float
    cpu: float
    rss_mib: float
    kubernetes: int
    kubernetes_writes: int
    github: int
    billable: int
    jobs: int = 0

    def row(self) -> str:
        return (
            f"| {self.name:<34} | {self.wall:>7.2f} | {self.cpu:>7.2f} | {self.rss_mib:>6.1f} "
            f"| {self.kubernetes:>5} ({self.kubernetes_writes} writes) | {self.github:>4} "
            f"| {self.billable:>3} | {self.jobs:>4} |"
        )


HEADER = (
    "| command                            |  wall s |   CPU s | RSS MiB | Kubernetes requests "
    "| GitHub | billable | Jobs |\n"
    "| ---------------------------------- | ------- | ------- | ------- | ------------------- "
    "| ------ | -------- | ---- |"
)


def app_env(i: int, github: str) -> dict[str, str]:
    """App ``i``'s settings, as its CronJob's pod template holds them."""
    name = f"app-{i:03d}"
    return {
        "REPO": f"acme/{name}",
        "IMAGE": IMAGE,
        "CHART_PATH": "deploy/chart",
        "RELEASE": name,
        "DEPLOY_NS": f"{NAMESPACE}-app",
        "STATE_CONFIGMAP": f"ci-runner-{name}",
        "GITHUB_API_URL": github,
        **SETTINGS_OF_ALL,
    }


def cronjob(i: int, env: dict[str, str]) -> dict[str, object]:
    name = f"ci-app-{i:03d}"
    labels = {"app.kubernetes.io/component": "runner", "ci-runner.io/app": f"app-{i:03d}"}
    container = {
        "name": "ci-runner",
        "image": "ghcr.io/ci-runner/ci-runner:0.1.0",
        "args": ["run"],
        "env": [
            *({"name": k, "value": v} for k, v in env.items()),
            {"name": "GIT_TOKEN", "valueFrom": {"secretKeyRef": {"name": "git", "key": "token"}}},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "schedule": "* * * * *",
            "suspend": True,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"restartPolicy": "Never", "containers": [container]},
                    },
                },
            },
        },
    }


def seed(emulator: Emulator, github: GitHubFake, apps: int) -> list[dict[str, str]]:
    """The apps, each deployed, with the ETag its own run keeps; the fleet's Secret and record."""
    emulator.create_namespace(NAMESPACE)
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {TOKEN}", "User-Agent": "bench-seed"})
    envs = []
    for i in range(apps):
        env = app_env(i, github.url)
        repo = env["REPO"]
        github.create_repo(repo)
        sha = github.push(repo, "main", APP_FILES, message="first")
        # The ETag the runner's own head() gets (same URL, Accept and token): its next run is
        # an idle one, a free 304.
        answer = session.get(
            f"{github.url}/repos/{repo}/commits/main",
            headers={"Accept": "application/vnd.github+json"},
        )
        release = env["RELEASE"]
        emulator.put(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": env["STATE_CONFIGMAP"],
                    "namespace": NAMESPACE,
                    "labels": {
                        "app.kubernetes.io/managed-by": "ci-runner",
                        "ci-runner.io/release": release,
                    },
                    "annotations": {
                        "ci-runner.io/github-etag": answer.headers["ETag"],
                        "ci-runner.io/github-etag-sha": sha,
                    },
                },
                "data": {"lastDeployedSha": sha, "repo": repo, "release": release},
            }
        )
        emulator.put(cronjob(i, env))
        envs.append(env)
    token = base64.b64encode(FLEET_TOKEN.encode()).decode()
    emulator.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "fleet-token", "namespace": NAMESPACE},
            "data": {"token": token},
        }
    )
    emulator.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ci-runner-fleet", "namespace": NAMESPACE},
        }
    )
    return envs


def counted(
    name: str,
    emulator: Emulator,
    github: GitHubFake,
    argv: list[str],
    env: dict[str, str],
    log: Path,
) -> Counted:
    """Run ``argv`` once, with what it asked of Kubernetes and GitHub."""
    emulator.clear_requests()
    before = len(github.requests)
    sample = measure.run(argv, env, log)
    ours = [r for r in emulator.requests if r.user_agent.startswith("ci-runner")]
    asked = github.requests[before:]
    return Counted(
        name,
        sample.wall,
        sample.cpu,
        sample.rss_mib,
        len(ours),
        sum(r.verb not in {"get", "list", "watch"} for r in ours),
        len(asked),
        sum(r.status != 304 for r in asked),
        sum(r.verb == "create" and r.resource == "jobs" for r in ours),
    )


def median(name: str, runs: list[Counted]) -> Counted:
    """The median of each figure over ``runs`` (the counts are the same in each)."""
    return Counted(
        name,
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        statistics.median(r.rss_mib for r in runs),
        runs[0].kubernetes,
        runs[0].kubernetes_writes,
        runs[0].github,
        runs[0].billable,
        runs[0].jobs,
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench fleet", description=__doc__)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the idle fleet run (5)")
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ci-runner-fleet-bench-") as tmp, Emulator() as emu:
        github = GitHubFake()
        github.start()
        try:
            rows = bench(emu, github, Path(tmp), options)
        except measure.Failed as e:
            sys.exit(f"bench: {e}")
        finally:
            github.stop()
    print(HEADER)
    for row in rows:
        print(row.row())


def bench(
    emu: Emulator, github: GitHubFake, root: Path, options: argparse.Namespace
) -> list[Counted]:
    apps = options.apps
    envs = seed(emu, github, apps)
    kubeconfig = emu.write_kubeconfig(root / "kubeconfig")
    base = {"PATH": "/usr/bin:/bin", "HOME": str(root), "PYTHONPATH": str(JOB_DIR),
            "KUBECONFIG": str(kubeconfig), "VERIFY_SSL": "false"}  # fmt: skip
    fleet_env = {
        **base,
        **SETTINGS_OF_ALL,
        "FLEET_TOKEN_SECRET": "fleet-token",
        "GITHUB_API_URL": github.url,
    }
    fleet = [options.python, "-m", "ci_runner", "fleet"]
    log = root / "output.log"
    # The fleet's first run learns every ETag (each a billable 200): not counted.
    measure.run(fleet, fleet_env, log)
    idle = [
        counted(f"ci-runner fleet ({apps} idle)", emu, github, fleet, fleet_env, log)
        for _ in range(max(options.rounds, 1))
    ]
    single = [options.python, "-m", "ci_runner", "run"]
    singles = [
        counted("", emu, github, single, {**base, **env, "GIT_TOKEN": TOKEN}, log) for env in envs
    ]
    summed = Counted(
        f"{apps} x ci-runner run (idle)",
        sum(s.wall for s in singles),
        sum(s.cpu for s in singles),
        max(s.rss_mib for s in singles),
        sum(s.kubernetes for s in singles),
        sum(s.kubernetes_writes for s in singles),
        sum(s.github for s in singles),
        sum(s.billable for s in singles),
    )
    for i in range(options.changed):
        github.push(envs[i * apps // options.changed]["REPO"], "main", {"README.md": "next"})
    changed = counted(
        f"ci-runner fleet ({options.changed} changed)", emu, github, fleet, fleet_env, log
    )
    return [median(idle[0].name, idle), summed, changed]
