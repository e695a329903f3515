"""Whether a new head need not be built at all: pure functions over its message, and (with
WATCH_PATHS) over the files GitHub's compare lists as changed since the deployed commit."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .github_answers import Changes

# The markers GitHub Actions honours in a commit message ([skip ci], [ci skip], [no ci]), and
# one for a commit that CI may test but that should not be deployed.
SKIP_MARKERS = ("[skip ci]", "[ci skip]", "[no ci]", "[skip deploy]")
# "The list of changed files ... includes up to 300 changed files for the entire comparison"
# (docs.github.com/rest/commits/commits#compare-two-commits), with no sign that it was cut: a
# listing of 300 is taken as cut.
COMPARE_FILE_LIMIT = 300


def skip_marker(message: str | None) -> str | None:
    """The skip marker ``message`` contains (in any letter case), or None."""
    lowered = (message or "").lower()
    return next((marker for marker in SKIP_MARKERS if marker in lowered), None)


def glob(pattern: str) -> re.Pattern[str]:
    """A WATCH_PATHS pattern as a regular expression over a whole path, case-sensitive:
    ``*`` and ``?`` stay within one directory, a ``**`` segment spans any number of them
    (``src/**`` matches ``src/app.py`` and ``src/a/b.py``; ``**/Dockerfile`` matches
    ``Dockerfile`` too)."""
    parts = pattern.split("/")
    regex = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            regex.append(".*" if last else "(?:[^/]+/)*")
            continue
        chars = ("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
        regex.append("".join(chars) + ("" if last else "/"))
    return re.compile("".join(regex))


def watched(patterns: Iterable[str], paths: Iterable[str]) -> list[str]:
    """The ``paths`` that one of ``patterns`` matches."""
    regexes = [glob(p) for p in patterns]
    return [path for path in paths if any(r.fullmatch(path) for r in regexes)]


def unwatched(patterns: Iterable[str], chart_path: str, changes: Changes) -> str | None:
    """Why the head need not be built: GitHub listed every change since the deployed commit
    and none is under ``patterns`` or the chart. None (build) on any doubt: a head that is not
    simply ahead (a rewritten branch), or a listing that may have been cut."""
    if changes.status != "ahead" or changes.listed >= COMPARE_FILE_LIMIT:
        return None
    if watched([*patterns, f"{chart_path}/**"], changes.paths):
        return None
    return f"no file under WATCH_PATHS or CHART_PATH changed since {changes.base[:7]}"
