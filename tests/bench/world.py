"""What the bench measures against: the emulator and the GitHub fake of the tests, the e2e app
deployed once by the real runner, and the commands it times (each a whole process).

The runner runs as ``python -m ci_runner``, with the ``ci_runner`` this bench imported first
on ``PYTHONPATH`` (the checkout's, not an installed copy), and a ``helm`` on PATH that logs its
arguments and then execs the real one, so that every helm process a run starts is counted.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ci_runner

from tests.bench import measure
from tests.e2e.appkit import APP_FILES, IMAGE, RELEASE, REPO, runner_env
from tests.support.charts import TOOLS
from tests.support.github_fake import GitHubFake
from tests.support.kube_emulator import Emulator
from tests.support.kube_target import KubeTarget

NAMESPACE = "bench"
TOKEN = "bench-token-0123456789abcdef"  # with a token, GitHub's 304 costs no rate limit
PROBE = Path(__file__).resolve().parent / "probe"
JOB_DIR = Path(ci_runner.__file__).resolve().parents[1]
HELM_WRAPPER = """\
#!/bin/sh
# The bench's helm: log the arguments, then become the real helm (same pid, same signals).
printf '%s\\n' "$*" >> {log}
exec {real} "$@"
"""


@dataclass(frozen=True)
class Probed:
    """A deploy's sample, with what the probe saw inside the runner."""

    sample: measure.Sample
    runner_mib: float
    """The runner's own peak RSS, without its helm."""
    helm_commands: list[str]
    """The arguments of each helm process the run started, in order."""


@dataclass
class World:
    """A running emulator and fake, the app deployed, and the commands to time."""

    emulator: Emulator
    github: GitHubFake
    root: Path
    env: dict[str, str]
    """The runner's environment (and everyone else's: same API, same HOME)."""
    helm: str
    """The real helm binary."""
    kubectl: str
    sha: str
    """The app's head commit."""
    python: str
    """The interpreter of the runner and of the ``python -c`` commands."""

    @property
    def output(self) -> Path:
        """Where every measured process's output goes."""
        return self.root / "output.log"

    @property
    def helm_log(self) -> Path:
        """One line per helm process the wrapper started."""
        return self.root / "helm-argv.log"

    def time(self, argv: list[str], stdin: bytes | None = None) -> measure.Sample:
        """One timed run of ``argv`` in the runner's environment."""
        return measure.run(argv, self.env, self.output, stdin)

    def runner(self, *args: str) -> list[str]:
        """``ci-runner run ARGS``."""
        return [self.python, "-m", "ci_runner", "run", *args]

    def import_kubernetes(self) -> list[str]:
        """The floor of any Python process that talks to Kubernetes through its client."""
        return [self.python, "-c", "import kubernetes"]

    def kubectl_get(self) -> list[str]:
        """``kubectl get`` of the state ConfigMap: one read, from a Go binary."""
        state = f"ci-runner-{RELEASE}"
        return [self.kubectl, "get", "configmap", state, "-n", NAMESPACE, "-o", "json"]

    def helm_upgrade(self, helm4: bool) -> tuple[list[str], bytes]:
        """The runner's own ``helm upgrade`` of the same chart, values on stdin, run alone."""
        rollback = "--rollback-on-failure" if helm4 else "--atomic"
        argv = [
            self.helm, "upgrade", RELEASE, str(self.root / "chart"), "--install",
            "--namespace", self.env["DEPLOY_NS"], "--create-namespace", rollback,
            "--wait", "--wait-for-jobs", "--timeout", "60s", "--history-max", "10",
            "--output", "json", "--values", "-",
        ]  # fmt: skip
        values = {"image": {"repository": IMAGE, "tag": self.sha}}
        return argv, json.dumps(values).encode()

    def probed(self, argv: list[str], **extra_env: str) -> Probed:
        """Time ``argv`` with the probe loaded: the runner's own peak, the helm processes it ran."""
        report = self.root / "rusage.txt"
        report.unlink(missing_ok=True)
        helm_before = _lines(self.helm_log)
        env = {
            **self.env,
            **extra_env,
            "PYTHONPATH": os.pathsep.join([str(PROBE), self.env["PYTHONPATH"]]),
            "CI_RUNNER_BENCH_RUSAGE": str(report),
        }
        sample = measure.run(argv, env, self.output)
        own = int(report.read_text()) / 1024
        return Probed(sample, own, _lines(self.helm_log)[len(helm_before) :])

    def big_deploy(self, mib: int) -> Probed:
        """A forced deploy of a commit that adds ``mib`` MiB of random bytes: the runner holds
        the tarball in memory, so its peak grows with the repository."""
        self.github.push(REPO, "main", {"big.bin": os.urandom(mib << 20)}, message="big")
        # API_TIMEOUT bounds the whole download; the fake gzips on the fly.
        return self.probed(self.runner("--force"), API_TIMEOUT="300")

    def helm_commands_of(self, argv: list[str]) -> tuple[measure.Sample, list[str]]:
        """Time ``argv``; the helm processes it started."""
        before = _lines(self.helm_log)
        sample = self.time(argv)
        return sample, _lines(self.helm_log)[len(before) :]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@contextmanager
def started(helm_major: int, python: str) -> Iterator[World]:
    """The emulator, the fake with the app's repository, and the runner's environment; the
    runner runs on ``python`` (a virtualenv with the runner's dependencies)."""
    with tempfile.TemporaryDirectory(prefix="ci-runner-bench-") as tmp, Emulator() as emulator:
        github = GitHubFake()
        github.start()
        try:
            yield _world(Path(tmp), emulator, github, helm_major, python)
        finally:
            github.stop()


def _world(
    root: Path, emulator: Emulator, github: GitHubFake, helm_major: int, python: str
) -> World:
    helm, kubectl = TOOLS / f"helm{helm_major}" / "helm", TOOLS / "bin" / "kubectl"
    for tool in (helm, kubectl):
        if not tool.exists():
            sys.exit(f"{tool} is missing: run `python scripts/install_tools.py` first")
    kubeconfig = emulator.write_kubeconfig(root / "kubeconfig")
    emulator.create_namespace(NAMESPACE)
    github.create_repo(REPO)
    github.require_token(TOKEN)
    sha = github.push(REPO, "main", APP_FILES, message="first")
    _write_chart(root / "chart")
    wrapper = _write_helm_wrapper(root / "wrapper", helm, root / "helm-argv.log")
    search_path = os.pathsep.join([str(wrapper), str(kubectl.parent), os.environ["PATH"]])
    home = root / "home"
    home.mkdir()
    target = KubeTarget(str(kubeconfig), NAMESPACE, emulator)
    env = {
        **runner_env(target, github.url, search_path, home),
        "PYTHONPATH": str(JOB_DIR),
        "GIT_TOKEN": TOKEN,
    }
    return World(emulator, github, root, env, str(helm), str(kubectl), sha, python)


def _write_chart(where: Path) -> None:
    """The app's chart, as ``helm upgrade`` alone gets it."""
    for name, text in APP_FILES.items():
        if name.startswith("deploy/chart/"):
            path = where / name.removeprefix("deploy/chart/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def _write_helm_wrapper(where: Path, helm: Path, log: Path) -> Path:
    """A directory holding the counting ``helm``."""
    where.mkdir()
    wrapper = where / "helm"
    wrapper.write_text(HELM_WRAPPER.format(log=shlex.quote(str(log)), real=shlex.quote(str(helm))))
    wrapper.chmod(0o755)
    return where
