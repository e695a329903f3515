"""The CLI surface a user reads: help with exit codes, and configuration errors on one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from ci_runner.cli import main
from ci_runner.config import Settings, StateSettings, table
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
        "143  stopped by SIGTERM",
    ):
        assert line in result.output
    # every code the README's table documents
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("###", 1)[0]
    for code in re.findall(r"^\| (\d+) \|", section, re.M):
        assert f"  {code}  " in result.output, code


@pytest.mark.parametrize(("command", "kind"), [("run", Settings), ("status", StateSettings)])
def test_every_setting_has_its_option_type_variable_and_default_in_help(
    command: str, kind: type[StateSettings]
) -> None:
    params = {p.name: p for p in main.commands[command].params}
    shown = CliRunner().invoke(main, [command, "--help"], terminal_width=1000).output
    for f, spec in table(kind):
        option = params[f.name]
        assert isinstance(option, click.Option)
        assert spec.option in option.opts
        if spec.is_flag:
            assert f"--no-{spec.option[2:]}" in option.secondary_opts
        else:
            assert f"{spec.option} {spec.metavar}" in shown
        assert f"[env: {spec.env}" in str(option.help)
        if spec.required:
            assert "required" in str(option.help)
        elif spec.shown_default is not None:
            assert f"default: {spec.shown_default}]" in str(option.help)
        assert f"[env: {spec.env}" in shown


def test_status_takes_only_what_finds_the_state() -> None:
    result = CliRunner().invoke(main, ["status", "--repo", "acme/shop"])
    assert result.exit_code == 2
    assert "No such option '--repo'" in result.output


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


def test_with_json_logs_even_a_usage_error_is_one_json_object() -> None:
    result = CliRunner().invoke(main, ["run", "--no-such-option"], env={"LOG_FORMAT": "json"})
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    entry = json.loads(line)
    assert entry["exitCode"] == 2 and "--no-such-option" in entry["message"]


def test_with_json_logs_a_configuration_error_is_one_json_object() -> None:
    result = CliRunner().invoke(main, ["run", "--log-format", "json"], env={})
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert json.loads(line)["message"].startswith("RELEASE is required")


def test_help_lists_the_required_settings_first() -> None:
    result = CliRunner().invoke(main, ["run", "--help"])
    options = re.findall(r"^  (--[a-z-]+)", result.output, re.M)
    required = [spec.option for _, spec in table(Settings) if spec.required]
    assert options[: len(required)] == required
