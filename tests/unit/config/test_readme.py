"""The README's configuration table is the settings table: same names, options and defaults."""

from __future__ import annotations

import re
from pathlib import Path

from ci_runner.config import FleetSettings, Settings, table

README = Path(__file__).resolve().parents[3] / "README.md"
ROW = re.compile(r"^\| `([A-Z_]+)` \| `([^`]+)` \| ([^|]+) \|")


def readme_rows() -> dict[str, tuple[str, str]]:
    text = README.read_text()
    start = text.index("| Environment | Option | Default | Meaning |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        match = ROW.match(line)
        assert match, f"README configuration row not understood: {line}"
        env, option, default = match.groups()
        rows[env] = (option, default.strip())
    return rows


def test_the_readme_lists_every_setting_with_its_option_and_default() -> None:
    rows = readme_rows()
    expected = {}
    for _, spec in table(Settings):
        option = f"{spec.option}/--no-{spec.option[2:]}" if spec.is_flag else spec.option
        if spec.required:
            default = "required"
        else:
            default = f"`{spec.shown_default}`" if spec.shown_default is not None else "none"
        expected[spec.env] = (option, default)
    assert rows == expected


def test_the_readme_lists_every_fleet_setting() -> None:
    text = README.read_text()
    start = text.index("| Fleet environment | Option | Default | Meaning |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        match = ROW.match(line)
        assert match, f"README fleet row not understood: {line}"
        env, option, default = match.groups()
        rows[env] = (option, default.strip())
    expected = {}
    for _, spec in table(FleetSettings):
        option = f"{spec.option}/--no-{spec.option[2:]}" if spec.is_flag else spec.option
        if spec.required:
            default = "required"
        else:
            default = f"`{spec.shown_default}`" if spec.shown_default is not None else "none"
        expected[spec.env] = (option, default)
    assert rows == expected
