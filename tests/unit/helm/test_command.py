"""The helm command a deploy runs, as --dry-run prints it."""

from __future__ import annotations

import pytest
from ci_runner.helm.deploy import command_line

from tests.support.settings import app_settings


@pytest.mark.parametrize(
    ("force", "helm4", "forced"),
    [("true", True, True), ("true", False, False), ("false", True, False)],
)
def test_conflicts_are_forced_only_by_helm_4_and_only_when_asked(
    force: str, helm4: bool, forced: bool
) -> None:
    line = command_line(app_settings(HELM_FORCE_CONFLICTS=force), "chart", helm4)
    assert ("--force-conflicts" in line.split()) == forced
    assert line.endswith("--values -")


def test_helm_acts_as_the_deployer_only_when_one_is_set() -> None:
    s = app_settings(DEPLOY_NS="web", DEPLOYER="ci-web-deployer")
    words = command_line(s, "chart", True).split()
    at = words.index("--kube-as-user")
    assert words[at + 1] == "system:serviceaccount:web:ci-web-deployer"
    assert "--kube-as-group" not in words  # the API server fills in a ServiceAccount's groups
    assert "--kube-as-user" not in command_line(app_settings(), "chart", True).split()


def test_deployer_must_be_a_service_account_name() -> None:
    from ci_runner.errors import ConfigError

    with pytest.raises(ConfigError, match="DEPLOYER"):
        app_settings(DEPLOYER="Not_A:Name")
