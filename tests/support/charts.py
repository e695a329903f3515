"""The project's chart and manifests, rendered by the real, pinned tools (no cluster needed).

``render_chart`` runs ``helm template``, ``render_manifests`` runs ``kubectl kustomize``; both
return the documents as dicts. ``values_file`` names the test values files in ``chart_values/``,
which the shipping tests and the end-to-end RBAC check both render the chart with.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ci-runner"
MANIFESTS = ROOT / "manifests"
TOOLS = ROOT / ".tools"
VALUES = Path(__file__).resolve().parent / "chart_values"

Document = dict[str, Any]
"""One Kubernetes object, as a YAML document of the rendering gives it."""


def values_file(name: str) -> str:
    """Path of one of the test values files in tests/support/chart_values/."""
    return str(VALUES / f"{name}.yaml")


def helm_binary() -> str:
    """The pinned helm the suite runs with (``CI_RUNNER_HELM``: 3 or 4)."""
    return str(TOOLS / f"helm{os.environ.get('CI_RUNNER_HELM', '3')}" / "helm")


def kubectl_binary() -> str:
    """The pinned kubectl."""
    return str(TOOLS / "bin" / "kubectl")


def render_chart(
    values_files: Sequence[str | Path],
    *,
    release: str = "ci",
    namespace: str = "cicd",
    helm: str | None = None,
) -> list[Document]:
    """``helm template`` the chart with these values files; the documents, empty ones dropped."""
    cmd = [helm or helm_binary(), "template", release, str(CHART), "--namespace", namespace]
    for path in values_files:
        cmd += ["--values", str(path)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def render_manifests(*, kubectl: str | None = None, path: str | Path = MANIFESTS) -> list[Document]:
    """``kubectl kustomize manifests/``; the documents."""
    cmd = [kubectl or kubectl_binary(), "kustomize", str(path)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout
    return [d for d in yaml.safe_load_all(out) if d]
