"""helm's lines of ``ci-runner check``: supported versions, and ``helm lint``'s errors."""

from __future__ import annotations

import pytest
from ci_runner.helm.deploy import helm_problem
from ci_runner.helm.probes import lint_errors


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
