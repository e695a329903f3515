"""``ci-runner check``, helm's side: helm on PATH with a supported version, and ``helm lint`` of a
chart with the values a run would deploy."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from ..checklist import Result, failed, passed
from ..errors import ConfigError, shorten
from .deploy import helm_problem, require_helm

HELM_TIMEOUT_SECONDS = 120
_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
# helm 3.18.0 is the oldest supported, but it has CVE-2025-55198 and CVE-2025-55199.
_VULNERABLE = {(3, 18, 0)}


def check_helm() -> tuple[str | None, Result]:
    """helm on PATH with a supported version: its path (None when unusable) and the line."""
    try:
        executable = require_helm()
        answer = subprocess.run(
            [executable, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT_SECONDS,
            check=False,
        )
    except ConfigError as e:
        return None, failed("helm", f"{e}: install 4.x or 3.18+")
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, failed("helm", f"`{executable} version` failed: {e}")
    version = answer.stdout.strip()
    problem = helm_problem(version)
    if problem is not None:
        return None, failed("helm", problem)
    found = _VERSION.search(version)
    assert found is not None
    note = ""
    if tuple(int(n) for n in found.groups()) in _VULNERABLE:
        note = " (has CVE-2025-55198 and CVE-2025-55199: take the newest 3.x patch)"
    return executable, passed("helm", f"{found.group(0)} at {executable}{note}")


def lint_errors(output: str) -> list[str]:
    """The ``[ERROR]`` entries of ``helm lint`` output, each on one line (helm 4 wraps them)."""
    errors: list[str] = []
    for line in output.splitlines():
        if line.startswith("[ERROR]"):
            errors.append(line.removeprefix("[ERROR]").strip())
        elif errors and line.startswith((" ", "\t")) and line.strip():
            errors[-1] += " " + line.strip()
    return errors


def lint(helm: str, chart_dir: Path, values: dict[str, object]) -> str | None:
    """``helm lint`` of the chart with the values a run would give it: the errors, or None."""
    values_file = chart_dir.parent / "check-values.json"
    values_file.write_text(json.dumps(values))
    try:
        done = subprocess.run(
            [helm, "lint", str(chart_dir), "--values", str(values_file)],
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"helm lint could not run: {e}"
    if done.returncode == 0:
        return None
    errors = lint_errors(done.stdout + done.stderr) or [done.stderr.strip()]
    return shorten("; ".join(errors), 600)
