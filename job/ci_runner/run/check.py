"""``ci-runner check``: is this setup right? Every item a run depends on, asked without writing.

Each system answers for itself (``kube/probes.py``, ``helm/probes.py``, ``github/probes.py``);
this module asks them in the order a run meets them, and adds the one line that needs all three:
the head commit's chart, fetched from GitHub and linted by helm with the values a run would
deploy.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..archive import extract_chart
from ..checklist import Result, failed, passed
from ..config import Settings
from ..errors import BadCommit, CiRunnerError
from ..github.client import GitHub
from ..github.probes import check_github
from ..helm.probes import check_helm, lint
from ..helm.values import chart_values
from ..kube.probes import check_kubernetes


def chart_line(s: Settings, github: GitHub, sha: str, helm: str | None) -> Result:
    """The head commit has a chart at CHART_PATH that helm lints with the run's values."""
    item = f"chart {s.chart_path} at {sha[:7]}"
    with tempfile.TemporaryDirectory(prefix="ci-runner-check-") as tmp:
        try:
            where = f"{s.repo}@{sha[:7]}"
            with github.tarball(sha) as tarball:
                chart_dir = extract_chart(
                    tarball, s.chart_path, Path(tmp), where, s.tarball_timeout
                )
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


def run_checks(s: Settings) -> list[Result]:
    """Every check, in the order a run meets them."""
    helm, helm_result = check_helm()
    results = [*check_kubernetes(s), helm_result]
    with GitHub(s) as github:
        github_results, head = check_github(s, github)
        results += github_results
        if head is not None:
            results.append(chart_line(s, github, head, helm))
    return results
