"""``ci-runner check``'s pure parts: exit codes, helm versions, helm lint output, the report,
the rate limit line, and which permissions a configuration needs."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from ci_runner.checklist import Result, exit_code, failed, passed, render
from ci_runner.cli import main
from ci_runner.config import Settings
from ci_runner.errors import ConfigError, GitHubError, KubernetesError
from ci_runner.github.answers import RateLimit
from ci_runner.github.probes import rate_limit_line
from ci_runner.helm.probes import helm_problem, lint_errors
from ci_runner.kube.probes import CICD, CLUSTER, NEEDS
from click.testing import CliRunner

from tests.support.settings import app_settings


def settings(**extra: object) -> Settings:
    """The app's settings with fields (not variables) replaced, as the checks see them."""
    return replace(app_settings(), **extra)  # type: ignore[arg-type]


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


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("v3.18.0+gcc58e3f", True),
        ("v3.19.2+gabcdef0", True),
        ("v4.1.4+g05fa379", True),
        ("v3.17.3+g1234567", False),
        ("v2.17.0", False),
        ("v5.0.0", False),
        ("", False),
    ],
)
def test_supported_helm_versions(version: str, supported: bool) -> None:
    assert (helm_problem(version) is None) == supported


def test_lint_errors_of_helm_3_and_the_wrapped_ones_of_helm_4() -> None:
    helm3 = (
        "==> Linting chart\n[INFO] Chart.yaml: icon is recommended\n"
        "[ERROR] templates/: template: x/templates/bad.yaml:2:10: nil pointer\n\n"
        "Error: 1 chart(s) linted, 1 chart(s) failed\n"
    )
    helm4 = (
        "==> Linting chart\n[WARNING] templates/cm.yaml: object name\n"
        "[ERROR] templates/: x/templates/bad.yaml:2:10\n"
        '  executing "x/templates/bad.yaml" at <.Values.x.y>:\n'
        "    nil pointer evaluating interface {}.y\n\n"
        "Error: 1 chart(s) linted, 1 chart(s) failed\n"
    )
    assert lint_errors(helm3) == ["templates/: template: x/templates/bad.yaml:2:10: nil pointer"]
    assert lint_errors(helm4) == [
        'templates/: x/templates/bad.yaml:2:10 executing "x/templates/bad.yaml" at '
        "<.Values.x.y>: nil pointer evaluating interface {}.y"
    ]


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


def test_rate_limit_line() -> None:
    soon = int(time.time()) + 600
    token = settings(git_token="t0ken-value")
    assert rate_limit_line(token, RateLimit(5000, 4990, soon)).ok
    exhausted = rate_limit_line(settings(), RateLimit(60, 0, soon))
    assert (exhausted.ok, exhausted.exit_code) == (False, 3)
    assert "set GIT_TOKEN" in exhausted.message
    anonymous = rate_limit_line(settings(), RateLimit(60, 59, soon))
    assert anonymous.ok and "set GIT_TOKEN" in anonymous.message
    assert "does not rate limit" in rate_limit_line(token, None).message


def test_needs_follow_the_settings() -> None:
    def asked(s: Settings, scope: str, resource: str) -> set[str]:
        return {
            v
            for n in NEEDS
            if n.scope == scope and n.resource == resource and n.when(s)
            for v in n.verbs
        }

    keeps_copy = settings(git_token="t0ken-value")
    own_secret = settings(git_token="t0ken-value", git_token_secret="web-git")
    assert asked(keeps_copy, CICD, "secrets") == {"get", "create", "update"}
    assert asked(own_secret, CICD, "secrets") == {"get"}
    assert asked(settings(), CLUSTER, "namespaces") == {"get", "create"}
    assert asked(settings(create_namespace=False), CLUSTER, "namespaces") == set()


def test_help_documents_checks_exit_codes() -> None:
    shown = CliRunner().invoke(main, ["check", "--help"]).output
    assert "2  something is misconfigured or missing" in shown
    assert "3  a service cannot be reached" in shown
    assert "--output [text|json]" in shown
