"""Helpers of the shipping tests (imported by name; conftest.py holds only fixtures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
VALUES = HERE / "values"
VENV_BIN = Path(sys.executable).parent
KUBERNETES_VERSIONS = ("1.29.0", "1.35.0")
"""The oldest and the newest Kubernetes minor the chart and manifests are validated against."""


def values_file(name: str) -> str:
    """Path of one of the test values files in tests/ship/values/."""
    return str(VALUES / f"{name}.yaml")


def kubernetes_validate(docs: list[dict], version: str) -> subprocess.CompletedProcess[str]:
    """Feed the documents to ``kubernetes-validate --strict -k VERSION -`` on stdin."""
    return subprocess.run(
        [str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", version, "-"],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one(docs: list[dict], kind: str, name: str) -> dict:
    """The single document of this kind and name."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container_env(cronjob_or_job: dict) -> dict[str, dict]:
    """The runner container's env of a CronJob or Job, by name (each entry as rendered)."""
    spec = cronjob_or_job["spec"]
    if cronjob_or_job["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    return {e["name"]: e for e in container.get("env", [])}
