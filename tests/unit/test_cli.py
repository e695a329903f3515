"""The CLI surface a user reads: help with exit codes, and configuration errors on one line."""

from __future__ import annotations

import pytest
from ci_runner.cli import main
from click.testing import CliRunner


@pytest.mark.parametrize("command", [[], ["run"], ["status"]])
def test_help_documents_the_exit_codes(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    for line in (
        "0  deployed, nothing to do, given up earlier, or another run holds the lock",
        "1  this cycle's build or deploy failed",
        "2  configuration or usage error",
        "3  an outside service failed",
    ):
        assert line in result.output


def test_every_setting_has_its_environment_variable_in_help() -> None:
    result = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    for env in (
        "REPO",
        "BRANCH",
        "IMAGE",
        "CHART_PATH",
        "RELEASE",
        "CICD_NS",
        "DEPLOY_NS",
        "MAX_RETRIES",
        "GIT_TOKEN",
        "REGISTRY_SECRET",
        "VERIFY_SSL",
        "GITHUB_API_URL",
        "KANIKO_IMAGE",
        "BUILD_TIMEOUT",
        "HELM_TIMEOUT",
        "STATE_CONFIGMAP",
        "LOG_FORMAT",
    ):
        assert f"[env: {env}" in result.output, env  # fmt: skip


def test_missing_settings_exit_2_with_one_line_naming_each() -> None:
    result = CliRunner().invoke(main, ["run", "--git-token", "fake-secret-value-123"], env={})
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ")
    for name in ("REPO", "IMAGE", "CHART_PATH", "RELEASE"):
        assert f"{name} is required" in line
    assert "fake-secret-value-123" not in result.output


def test_unknown_option_is_a_usage_error() -> None:
    assert CliRunner().invoke(main, ["run", "--no-such-option"]).exit_code == 2
