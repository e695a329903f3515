"""The lines of ``ci-runner check``: which exit code a set of lines gives, how a failure is
classed, and the report as text and as JSON."""

from __future__ import annotations

import json

import pytest
from ci_runner.checklist import Result, exit_code, failed, passed, render
from ci_runner.cli import main
from ci_runner.errors import ConfigError, GitHubError, KubernetesError
from click.testing import CliRunner


def test_exit_code_prefers_what_the_user_must_fix() -> None:
    ok, config, down = passed("a", "fine"), failed("b", "wrong"), failed("c", "down", 3)
    assert exit_code([ok, ok]) == 0
    assert exit_code([ok, down]) == 3
    assert exit_code([down, config, ok]) == 2


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError(["REPO is wrong"]), 2),
        (KubernetesError("forbidden", 403), 2),  # credentials or permissions refused
        (KubernetesError("refused the token", 401), 2),
        (KubernetesError("etcd is sad", 500), 3),
        (KubernetesError("unreachable"), 3),
        (GitHubError("GitHub answered 502"), 3),
    ],
)
def test_failures_are_misconfigured_or_unreachable(error: Exception, code: int) -> None:
    assert isinstance(error, ConfigError | KubernetesError | GitHubError)
    assert failed("item", error).exit_code == code


def test_report_as_lines_and_as_json() -> None:
    results = [passed("helm", "v4.1.4"), Result("Secrets in cicd", False, "missing", 2)]
    text = render(results, "text").splitlines()
    assert text[:2] == ["✔ helm: v4.1.4", "✘ Secrets in cicd: missing"]
    assert text[2].startswith("1 problem(s)")
    assert render([results[0]], "text").splitlines()[-1].startswith("all checks passed")
    assert json.loads(render(results, "json")) == [
        {"item": "helm", "ok": True, "message": "v4.1.4", "exitCode": 0},
        {"item": "Secrets in cicd", "ok": False, "message": "missing", "exitCode": 2},
    ]


def test_help_documents_checks_exit_codes() -> None:
    shown = CliRunner().invoke(main, ["check", "--help"]).output
    assert "2  something is misconfigured or missing" in shown
    assert "3  a service cannot be reached" in shown
    assert "--output [text|json]" in shown
