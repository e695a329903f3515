"""End-to-end helpers: an app repository in the GitHub fake, and ``ci-runner`` as a subprocess.

The runner runs exactly as a user runs it: its console script, a kubeconfig, helm on PATH.

On a real cluster (``CI_RUNNER_TEST_KUBECONFIG``) the build Job cannot reach the GitHub fake on
127.0.0.1, so Kaniko is replaced by an image that exits 0 whatever its arguments
(``CI_RUNNER_TEST_BUILD_IMAGE``, default ``hello-world``), and the app's Deployment asks for no
replicas, so nothing needs the image that was never pushed. Tests of build outcomes need the
emulator's Job controls and skip there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from tests.support.github_fake import GitHubFake
from tests.support.kube_target import KubeTarget

REPO = "acme/shop"
IMAGE = "registry.example.com/acme/shop"
RELEASE = "shop"
BUILD = {"app.kubernetes.io/component": "build"}
"""The labels of the runner's build Jobs and pods."""
CHART_YAML = "apiVersion: v2\nname: shop\nversion: 0.1.0\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {app: {{ .Release.Name }}}
spec:
  replicas: 0
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: {{ .Release.Name }}}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80}]
"""
# A chart Job that a test makes fail (emulator rule on its name) so that helm rolls back.
MIGRATION = """\
apiVersion: batch/v1
kind: Job
metadata: {name: {{ .Release.Name }}-migrate}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox, command: ["false"]}]
"""
APP_FILES = {
    "Dockerfile": "FROM scratch\n",
    "deploy/chart/Chart.yaml": CHART_YAML,
    "deploy/chart/values.yaml": "image: {repository: nginx, tag: latest}\n",
    "deploy/chart/templates/deployment.yaml": DEPLOYMENT,
    "deploy/chart/templates/service.yaml": SERVICE,
}


def runner_env(kube: KubeTarget, github_url: str, path: str, home: Path) -> dict[str, str]:
    """The environment ``ci-runner`` runs the app with: its settings, the Kubernetes API, the
    GitHub fake, ``path`` as PATH, and ``home`` as HOME (helm keeps its caches there) with a
    ``tmp`` in it as TMPDIR, made here (the pod's /tmp emptyDir; what a killed run leaves there
    stays with the test)."""
    (home / "tmp").mkdir(exist_ok=True)
    env = {
        **kube.env(),
        "PATH": path,
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "PYTHONFAULTHANDLER": "1",  # a run aborted by a test prints every thread's stack
        "HELM_CACHE_HOME": str(home / "helm-cache"),
        "HELM_CONFIG_HOME": str(home / "helm-config"),
        "HELM_DATA_HOME": str(home / "helm-data"),
        "REPO": REPO,
        "IMAGE": IMAGE,
        "CHART_PATH": "deploy/chart",
        "RELEASE": RELEASE,
        "CICD_NS": kube.namespace,
        "DEPLOY_NS": f"{kube.namespace}-app",
        "GITHUB_API_URL": github_url,
        "HELM_TIMEOUT": "60",
        "API_TIMEOUT": "5",
        "VERIFY_SSL": "false",
    }
    for obsolete in ("INTERVAL", "STATE_PATH", "GIT_TOKEN", "KANIKO_IMAGE"):
        env.pop(obsolete, None)
    return env


@dataclass
class Run:
    """One finished ``ci-runner`` process."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class App:
    """The app under test: its repository in the fake and the runner's settings for it."""

    kube: KubeTarget
    """Where the Kubernetes API is (emulator or real cluster)."""
    github: GitHubFake
    env: dict[str, str]
    home: Path
    heads: list[str] = field(default_factory=list)
    started: list[subprocess.Popen[str]] = field(default_factory=list)
    """Runs started in the background; the fixture reaps any a failed test left running."""

    @property
    def cicd(self) -> str:
        return self.env["CICD_NS"]

    @property
    def deploy_ns(self) -> str:
        return self.env["DEPLOY_NS"]

    def push(self, files: Mapping[str, str | bytes | None], message: str = "change") -> str:
        sha = self.github.push(REPO, self.env.get("BRANCH", "main"), files, message=message)
        self.heads.append(sha)
        return sha

    def run(self, *args: str, **env: str) -> Run:
        """Run ``ci-runner run ARGS`` to its end, with extra environment."""
        return self.cli("run", *args, **env)

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """Start ``ci-runner run ARGS`` in the background, in a process group of its own."""
        process = subprocess.Popen(
            [*self.command("run"), *args],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def start_a_slow_upgrade(self) -> tuple[subprocess.Popen[str], str, str]:
        """Push a commit with a chart Job the emulator holds and start a run; return once helm
        waits for that Job (the release is pending): (the run, the held Job, the commit)."""
        assert self.kube.emulator is not None, "needs the emulator's Job controls"
        self.kube.emulator.jobs.behave("hold", name=f"{RELEASE}-migrate")
        sha = self.push({"deploy/chart/templates/migrate.yaml": MIGRATION}, message="migrate")
        process = self.start()
        return process, self.wait_for_job(self.deploy_ns), sha

    @staticmethod
    def terminate(process: subprocess.Popen[str], within: float = 60) -> str:
        """SIGTERM ``process``, as Kubernetes stops a pod; its stderr once it has exited. A run
        still alive ``within`` seconds later is aborted, and the failure shows where each of its
        threads stood (PYTHONFAULTHANDLER is set for every run)."""
        process.terminate()
        try:
            return process.communicate(timeout=within)[1]
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            _, err = process.communicate(timeout=30)
            raise AssertionError(f"still running {within}s after SIGTERM:\n{err[-8000:]}") from None

    @staticmethod
    def kill_like_a_node_loss(process: subprocess.Popen[str]) -> None:
        """SIGKILL the runner and its helm at once, as losing the pod's node would. helm runs
        in a session of its own (so that a SIGTERM reaches it), so it is killed by its own
        process group, found among the runner's children."""
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        for pid in [process.pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        process.communicate()

    def expire_lease(self) -> None:
        """Make the Lease look as a dead holder's does a minute later."""
        with self.api() as api:
            leases = client.CoordinationV1Api(api)
            lease = leases.read_namespaced_lease(f"ci-runner-{RELEASE}", self.cicd)
            lease.spec.renew_time = datetime.now(UTC) - timedelta(minutes=5, microseconds=-1)
            leases.replace_namespaced_lease(lease.metadata.name, self.cicd, lease)

    def wait_for_job(self, namespace: str, label_selector: str = "") -> str:
        """Block until a Job appears in ``namespace`` (a watch, not a sleep); its name."""
        with self.api() as api:
            for event in watch.Watch().stream(
                client.BatchV1Api(api).list_namespaced_job,
                namespace,
                label_selector=label_selector,
                timeout_seconds=60,
            ):
                return str(event["object"].metadata.name)
        raise AssertionError(f"no Job appeared in {namespace}")

    def wait_for_build_job(self) -> str:
        """Block until the runner's build Job appears; its name."""
        return self.wait_for_job(self.cicd, f"ci-runner.io/release={RELEASE}")

    def cli(self, *args: str, **env: str) -> Run:
        done = subprocess.run(
            [*self.command(), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    @staticmethod
    def command(*args: str) -> list[str]:
        return [sys.executable, "-m", "ci_runner", *args]

    def api(self) -> client.ApiClient:
        return config.new_client_from_config(self.kube.kubeconfig)

    def state(self) -> dict[str, Any] | None:
        """The state ConfigMap as JSON, or None."""
        with self.api() as api:
            try:
                cm = client.CoreV1Api(api).read_namespaced_config_map(
                    f"ci-runner-{RELEASE}", self.cicd
                )
            except client.ApiException as e:
                if e.status == 404:
                    return None
                raise
            state: dict[str, Any] = api.sanitize_for_serialization(cm)
            return state

    def build_jobs(self) -> list[dict[str, Any]]:
        with self.api() as api:
            jobs = client.BatchV1Api(api).list_namespaced_job(
                self.cicd, label_selector=f"ci-runner.io/release={RELEASE}"
            )
            items: list[dict[str, Any]] = api.sanitize_for_serialization(jobs)["items"]
            return items

    def deployed_image(self) -> str:
        with self.api() as api:
            deployment = client.AppsV1Api(api).read_namespaced_deployment(RELEASE, self.deploy_ns)
            return str(deployment.spec.template.spec.containers[0].image)

    def helm(self, *args: str) -> Any:
        done = subprocess.run(
            ["helm", *args, "--namespace", self.deploy_ns, "--output", "json"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)

    def status(self) -> dict[str, Any]:
        done = self.cli("status", "--output", "json")
        status: dict[str, Any] = json.loads(done.stdout)
        # A release no run has recorded is exit 2 (its name may be a typo), with the report.
        assert done.code == (2 if self.state() is None else 0), done.output
        return status
