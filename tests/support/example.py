"""The README's example app (examples/hello), as files to push into the GitHub fake."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"
CHART_PATH = "chart"
"""CHART_PATH of a repository made of the example's files, as the README's walkthrough sets it."""


def example_files() -> dict[str, str]:
    """Every file of the example, by its path in a repository made of them (README excluded)."""
    return {
        str(path.relative_to(EXAMPLE)): path.read_text()
        for path in sorted(EXAMPLE.rglob("*"))
        if path.is_file() and path.name != "README.md"
    }
