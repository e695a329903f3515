"""The deploy: ``helm upgrade --install`` through pyhelm3, rolled back by helm on failure."""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyhelm3
import pyhelm3.errors
import yaml

from .errors import ConfigError, DeployError, KubernetesError, shorten
from .settings import Settings

log = logging.getLogger(__name__)


def require_helm() -> str:
    """The helm executable on PATH, or ConfigError."""
    found = shutil.which("helm")
    if not found:
        raise ConfigError(["helm is not on PATH (the runner's image ships it)"])
    return found


def image_values(settings: Settings, sha: str) -> dict[str, Any]:
    """Values that point the chart at the freshly built image, nested from the dotted keys."""
    values: dict[str, Any] = {}
    for key, value in (
        (settings.image_repository_key, settings.image),
        (settings.image_tag_key, sha),
    ):
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return values


def chart_values(settings: Settings, chart_dir: Path, sha: str) -> list[dict[str, Any]]:
    """The values files (in order) and then the image values; helm merges them left to right."""
    layers: list[dict[str, Any]] = []
    for name in settings.values_files:
        path = chart_dir / name
        if not path.is_file():
            raise ConfigError([f"VALUES_FILES entry {name!r} does not exist in the chart"])
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            problem = shorten(str(e), 120)
            raise ConfigError([f"VALUES_FILES entry {name!r} is not valid YAML: {problem}"]) from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError([f"VALUES_FILES entry {name!r} is not a mapping of values"])
        layers.append(loaded or {})
    layers.append(image_values(settings, sha))
    return layers


def command_line(settings: Settings, chart: str, sha: str, helm4: bool) -> str:
    """The helm command a deploy runs, for --dry-run (values are shown as --set)."""
    s = settings
    rollback = "--rollback-on-failure" if helm4 else "--atomic"
    words = [
        "helm", "upgrade", s.release, chart, "--install", "--namespace", s.deploy_namespace,
        *(["--create-namespace"] if s.create_namespace else []),
        rollback, "--wait", "--wait-for-jobs", "--timeout", f"{s.helm_timeout}s",
    ]  # fmt: skip
    for name in s.values_files:
        words += ["--values", f"{chart}/{name}"]
    words += ["--set", f"{s.image_repository_key}={s.image}", "--set", f"{s.image_tag_key}={sha}"]
    return shlex.join(words)


def helm_major(executable: str) -> int:
    """The major version of the helm binary."""
    client = pyhelm3.Client(executable=executable)
    return int(client.version.major)


@dataclass(frozen=True)
class Deploy:
    """One ``helm upgrade --install`` of an extracted chart with its values."""

    settings: Settings
    chart_dir: Path
    values: list[dict[str, Any]]
    """The layers from ``chart_values``, merged left to right."""
    executable: str

    def run(self) -> int:
        """Install or upgrade the release; its new revision number."""
        try:
            return asyncio.run(self._run())
        except pyhelm3.errors.ConnectionError as e:
            raise KubernetesError(f"helm could not reach the Kubernetes API: {_stderr(e)}") from e
        except pyhelm3.errors.Error as e:
            release = self.settings.release
            raise DeployError(f"helm upgrade of {release} failed: {_stderr(e)}") from e

    async def _run(self) -> int:
        s = self.settings
        client = pyhelm3.Client(
            executable=self.executable,
            insecure_skip_tls_verify=not s.verify_ssl,
            default_timeout=f"{s.helm_timeout}s",
        )
        # A helm killed mid-upgrade (a crashed run) leaves the release pending-*, which blocks
        # every later upgrade; pyhelm3 rolls such a release back (or uninstalls a pending
        # install) first.
        await client.get_proceedable_revision(
            s.release, namespace=s.deploy_namespace, timeout=f"{s.helm_timeout}s"
        )
        chart = await client.get_chart(self.chart_dir)
        helm4 = client.version.major >= 4
        revision = await client.install_or_upgrade_release(
            s.release,
            chart,
            *self.values,
            # helm 4 renamed --atomic; asking pyhelm3 for the right one avoids its warning.
            atomic=not helm4,
            rollback_on_failure=helm4,
            create_namespace=s.create_namespace,
            namespace=s.deploy_namespace,
            timeout=f"{s.helm_timeout}s",
            wait=True,
        )
        log.debug("helm revision %s is %s", revision.revision, revision.status)
        return int(revision.revision)


def _stderr(e: pyhelm3.errors.Error) -> str:
    text = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else str(e)
    return shorten(text.replace("Error: ", "", 1), 400)
