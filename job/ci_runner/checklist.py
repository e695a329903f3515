"""The lines of ``ci-runner check``: each system's probes return them (``kube/probes.py``,
``helm/probes.py``, ``github/probes.py``), ``run/check.py`` asks the probes in the order a run
meets them, and this module turns the lines into the report and the exit code. Pure.

Like ``flux check --pre``: one line per item, ✔ or ✘ with what to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import CiRunnerError, ConfigError, KubernetesError, ServiceError

MISCONFIGURED = ConfigError.exit_code
UNREACHABLE = ServiceError.exit_code


@dataclass(frozen=True)
class Result:
    """One line of the report."""

    item: str
    ok: bool
    message: str
    """What was found; for a failure, what is wrong and what to do."""
    exit_code: int = 0
    """0, MISCONFIGURED (2) or UNREACHABLE (3)."""


def passed(item: str, message: str) -> Result:
    """A check that passed."""
    return Result(item, True, message)


def failed(item: str, problem: CiRunnerError | str, code: int = MISCONFIGURED) -> Result:
    """A check that failed: a service that failed or cannot be reached is UNREACHABLE, except
    that credentials or permissions it refuses (401, 403) are a misconfiguration."""
    if isinstance(problem, ServiceError):
        refused = isinstance(problem, KubernetesError) and problem.status in (401, 403)
        code = MISCONFIGURED if refused else UNREACHABLE
    return Result(item, False, str(problem), code)


def exit_code(results: Iterable[Result]) -> int:
    """0 when every check passed; else 2 when something is misconfigured (what the user must
    fix, whatever else failed), else 3 (a service could not be reached)."""
    codes = {r.exit_code for r in results if not r.ok}
    if MISCONFIGURED in codes:
        return MISCONFIGURED
    return UNREACHABLE if codes else 0


def render(results: list[Result], output: str) -> str:
    """The report: a ✔/✘ line per item, or the list as JSON."""
    if output == "json":
        entries = [
            {"item": r.item, "ok": r.ok, "message": r.message, "exitCode": r.exit_code}
            for r in results
        ]
        return json.dumps(entries, indent=2)
    lines = [f"{'✔' if r.ok else '✘'} {r.item}: {r.message}" for r in results]
    problems = sum(not r.ok for r in results)
    lines.append(
        f"{problems} problem(s): fix them, then run `ci-runner check` again"
        if problems
        else "all checks passed: try `ci-runner run --dry-run`, then `ci-runner run`"
    )
    return "\n".join(lines)
