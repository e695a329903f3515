"""checkov, offline, over the Dockerfile, the manifests and the rendered chart: no failed check;
every skipped one carries its reason next to the resource."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ship.shipkit import VENV_BIN, Render
from tests.support import charts
from tests.support.charts import Document

# checkov tries to download guidelines and talk to its platform; none of that is needed here.
OFFLINE = {
    "BC_SKIP_MAPPING": "TRUE",
    "CKV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    "CKV_IGNORE_HIDDEN_DIRECTORIES": "true",
    "LOG_LEVEL": "WARNING",
}


def checkov(target: Path, framework: str, home: Path) -> dict[str, Any]:
    """One checkov run over one file; its JSON report for the framework."""
    result = subprocess.run(
        [
            str(VENV_BIN / "checkov"),
            "--file",
            str(target),
            "--framework",
            framework,
            "--quiet",
            "--compact",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **OFFLINE, "HOME": str(home)},
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    ours: dict[str, Any]
    (ours,) = [r for r in reports if r.get("check_type") == framework]
    return ours


def skip_reasons(docs: list[Document]) -> dict[str, str]:
    """The ``checkov.io/skipN: CKV_ID=reason`` annotations, as "Kind/name CKV_ID" -> reason."""
    found = {}
    for doc in docs:
        for key, value in (doc["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                found[f"{doc['kind']}/{doc['metadata']['name']} {check}"] = reason
    return found


def assert_clean(report: dict[str, Any], min_resources: int, skips: dict[str, str]) -> None:
    """No failed check; each skip (and only those) has its reason written next to it."""
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"].get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= min_resources
    assert summary["passed"] > 0
    assert summary["skipped"] == len(skips), f"checkov skipped {summary['skipped']}, not {skips}"
    short = [k for k, reason in skips.items() if len(reason.strip()) < 20]
    assert short == [], f"skipped without a real reason: {short}"


def test_dockerfile_passes_checkov(tmp_path: Path) -> None:
    dockerfile = charts.ROOT / "Dockerfile"
    skips = dict(re.findall(r"^# checkov:skip=(CKV\w+):(.*)$", dockerfile.read_text(), re.M))
    assert set(skips) <= {"CKV_DOCKER_2"}, "only the HEALTHCHECK check is skipped"
    report = checkov(dockerfile, "dockerfile", tmp_path)
    assert_clean(report, min_resources=1, skips=skips)


def test_manifests_pass_checkov(manifest_docs: list[Document], tmp_path: Path) -> None:
    target = tmp_path / "manifests.yaml"
    target.write_text(yaml.safe_dump_all(manifest_docs))
    report = checkov(target, "kubernetes", tmp_path)
    assert_clean(report, min_resources=len(manifest_docs), skips=skip_reasons(manifest_docs))


@pytest.mark.helm
def test_rendered_chart_passes_checkov(render: Render, tmp_path: Path) -> None:
    docs = [
        *render("one-app", release="one"),
        *render("three-apps", release="three"),
        *render("private", release="private", namespace="cicd-private"),
        *render("fleet", release="fleet", namespace="cicd-fleet"),
        *render("fleet", "fleet-app", release="fleetapp", namespace="cicd-fleetapp"),
    ]
    target = tmp_path / "chart.yaml"
    target.write_text(yaml.safe_dump_all(docs))
    report = checkov(target, "kubernetes", tmp_path)
    assert_clean(report, min_resources=len(docs), skips=skip_reasons(docs))
