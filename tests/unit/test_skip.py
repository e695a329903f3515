"""Which heads need no build: the skip markers of a commit message."""

from __future__ import annotations

import pytest
from ci_runner.skip import skip_marker


@pytest.mark.parametrize(
    ("message", "marker"),
    [
        ("Fix a typo [skip ci]", "[skip ci]"),
        ("Docs\n\nNothing to ship. [ci skip]", "[ci skip]"),
        ("[no ci] bump the changelog", "[no ci]"),
        ("Tests only [skip deploy]", "[skip deploy]"),
        ("Shouting [SKIP CI]", "[skip ci]"),
    ],
)
def test_a_marker_anywhere_in_the_message_skips(message: str, marker: str) -> None:
    assert skip_marker(message) == marker


@pytest.mark.parametrize(
    "message",
    ["Ship it", "skip ci without brackets", "[skip-ci]", "[ci]", "", None],
)
def test_anything_else_is_built(message: str | None) -> None:
    assert skip_marker(message) is None
