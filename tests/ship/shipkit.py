"""Helpers of the shipping tests (imported by name; conftest.py holds only fixtures)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.support.charts import Document

VENV_BIN = Path(sys.executable).parent
KUBERNETES_VERSIONS = ("1.29.0", "1.35.0")
"""The oldest and the newest Kubernetes minor the chart and manifests are validated against."""
Render = Callable[..., list[Document]]
"""The ``render`` fixture: ``render("one-app", "private", release=..., namespace=...)``."""


def kubernetes_validate(docs: list[Document], version: str) -> subprocess.CompletedProcess[str]:
    """Feed the documents to ``kubernetes-validate --strict -k VERSION -`` on stdin."""
    return subprocess.run(
        [str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", version, "-"],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one(docs: list[Document], kind: str, name: str) -> Document:
    """The single document of this kind and name."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container_env(cronjob_or_job: Document) -> dict[str, Document]:
    """The runner container's env of a CronJob or Job, by name (each entry as rendered)."""
    spec = cronjob_or_job["spec"]
    if cronjob_or_job["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    return {e["name"]: e for e in container.get("env", [])}


def assert_one_restricted_cycle_at_a_time(cronjob: Document, writes: bool = True) -> Document:
    """What the chart's and the manifests' CronJobs both promise: one run at a time, no Job
    retries, the restricted Pod Security profile, and (``writes``: not the fleet, which keeps
    no file) writable /tmp and HOME as emptyDir only. Returns the runner container."""
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True, "the runner talks to the API"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container: Document
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]) == {"requests", "limits"}
    if not writes:
        assert "volumes" not in pod and "volumeMounts" not in container
        return container
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"] and "emptyDir" in mounts["/home/runner"]
    return container
