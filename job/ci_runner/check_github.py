"""``ci-runner check``, GitHub's side: helm, the credentials, the repository and branch, and the
head commit's chart, linted with the values a run would deploy (see ``check.py``)."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from .archive import extract_chart
from .check import Result, failed, passed
from .errors import BadCommit, CiRunnerError, ConfigError, GitHubError, shorten
from .github import GitHub
from .github_answers import RateLimit
from .settings import Settings

HELM_TIMEOUT_SECONDS = 120
_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
# helm 3.18.0 is the oldest supported, but it has CVE-2025-55198 and CVE-2025-55199.
_VULNERABLE = {(3, 18, 0)}


def helm_problem(version: str) -> str | None:
    """What is wrong with a ``helm version --short`` answer; None for 3.18+ and 4.x."""
    found = _VERSION.search(version)
    if found is None:
        return f"cannot tell helm's version from {shorten(version, 80)!r}"
    major, minor, _ = (int(n) for n in found.groups())
    if major == 4 or (major == 3 and minor >= 18):
        return None
    return f"helm {found.group(0)} is not supported: install 4.x or 3.18+ (the newest 3.x patch)"


def check_helm() -> tuple[str | None, Result]:
    """helm on PATH with a supported version: its path (None when unusable) and the line."""
    from .helm import require_helm

    try:
        executable = require_helm()
        answer = subprocess.run(
            [executable, "version", "--short"],
            capture_output=True, text=True, timeout=HELM_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
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


def app_line(s: Settings, github: GitHub) -> Result:
    """GitHub exchanges the App's JWT for an installation token, which then authorises the
    checks that follow. The token is not kept: ``check`` writes nothing."""
    from . import logs
    from .appauth import app_jwt

    assert s.github_app_id and s.github_app_private_key and s.github_app_installation_id
    item = f"GitHub App {s.github_app_id}"
    jwt = app_jwt(s.github_app_id, s.github_app_private_key, datetime.now(UTC))
    logs.learn(jwt)
    try:
        token, expires = github.installation_token(jwt, s.github_app_installation_id)
    except (ConfigError, GitHubError) as e:  # a key GitHub rejects: 3; no such installation: 2
        return failed(item, e)
    logs.learn(token)
    github.authorize(token)
    until = expires.astimezone(UTC).strftime("%H:%M UTC")
    return passed(item, f"installation {s.github_app_installation_id} token issued (until {until})")


def rate_limit_line(s: Settings, limit: RateLimit | None) -> Result:
    """GitHub accepted the credentials; how much of the rate limit is left."""
    item = "GitHub credentials"
    who = "GIT_TOKEN accepted" if s.git_token else "none (no GIT_TOKEN): anonymous requests"
    if s.uses_app:
        who = "the App's installation token accepted"
    if limit is None:
        return passed(item, f"{who}; this server does not rate limit")
    reset = datetime.fromtimestamp(limit.reset, UTC).strftime("%H:%M UTC")
    left = f"{limit.remaining}/{limit.limit} requests left this hour (full again at {reset})"
    if limit.remaining == 0:
        hint = "" if s.has_credentials else "; set GIT_TOKEN (5000 an hour instead of 60)"
        return failed(item, f"{who}, but the rate limit is exhausted: {left}{hint}", 3)
    if not s.has_credentials:
        left += "; 60 an hour shared by this address: set GIT_TOKEN"
    return passed(item, f"{who}, {left}")


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
            capture_output=True, text=True, timeout=HELM_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"helm lint could not run: {e}"
    if done.returncode == 0:
        return None
    errors = lint_errors(done.stdout + done.stderr) or [done.stderr.strip()]
    return shorten("; ".join(errors), 600)


def chart_line(s: Settings, github: GitHub, sha: str, helm: str | None) -> Result:
    """The head commit has a chart at CHART_PATH that helm lints with the run's values."""
    from .helm import chart_values

    item = f"chart {s.chart_path} at {sha[:7]}"
    with tempfile.TemporaryDirectory(prefix="ci-runner-check-") as tmp:
        try:
            where = f"{s.repo}@{sha[:7]}"
            with github.tarball(sha) as tarball:
                chart_dir = extract_chart(tarball, s.chart_path, Path(tmp), where)
            values = chart_values(s, chart_dir, sha)
        except BadCommit as e:  # the commit's own fault: a run would count failed attempts
            return failed(item, f"{e}: fix CHART_PATH or VALUES_FILES, or push the chart")
        except CiRunnerError as e:
            return failed(item, e)
        if helm is None:
            return failed(item, "found, but not linted: helm is missing or unsupported")
        problem = lint(helm, chart_dir, values)
    if problem is not None:
        return failed(item, f"helm lint failed: {problem}")
    return passed(item, "helm lint passed with the values a run would deploy")


def check_github(s: Settings, helm: str | None) -> list[Result]:
    """GitHub answers and takes the credentials; the repository, the branch, the head's chart.
    A failed step skips those that depend on it."""
    with GitHub(s) as github:
        if s.uses_app:
            app = app_line(s, github)
            if not app.ok:
                return [replace(app, message=f"{app.message}; the repository was not checked")]
        try:
            results = [*([app] if s.uses_app else []), rate_limit_line(s, github.rate_limit())]
        except (ConfigError, GitHubError) as e:
            result = failed("GitHub credentials", e)
            return [replace(result, message=f"{result.message}; the repository was not checked")]
        if not results[-1].ok:
            return results
        try:
            repository = github.repository()
            visibility = "private" if repository.get("private") else "public"
            results.append(passed(f"repository {s.repo}", f"visible ({visibility})"))
            head = github.head(s.branch)
        except (ConfigError, GitHubError) as e:
            checked = len(results) - s.uses_app  # the App's line is not a repository step
            item = f"repository {s.repo}" if checked == 1 else f"branch {s.branch}"
            return [*results, failed(item, e)]
        assert head.sha is not None  # asked without an ETag: never a 304
        results.append(passed(f"branch {s.branch}", f"head is {head.sha[:7]}"))
        results.append(chart_line(s, github, head.sha, helm))
    return results
