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
