"""Which heads need no build: the skip markers of a commit message, and WATCH_PATHS over the
files GitHub's compare lists."""

from __future__ import annotations

import pytest
from ci_runner.github.answers import Changes
from ci_runner.run.plan import skip_marker, unwatched, watched


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


# -- WATCH_PATHS ----------------------------------------------------------------------------

BASE = "d" * 40


def changes(*paths: str, status: str = "ahead", listed: int | None = None) -> Changes:
    return Changes(BASE, status, paths, len(paths) if listed is None else listed)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("src/**", "src/app.py", True),
        ("src/**", "src/a/b.py", True),
        ("src/**", "srcs/app.py", False),
        ("src/**", "lib/src/app.py", False),
        ("src/*.py", "src/app.py", True),
        ("src/*.py", "src/a/b.py", False),  # * stays within a directory
        ("src/**/*.py", "src/app.py", True),  # ** spans zero directories too
        ("src/**/*.py", "src/a/b/c.py", True),
        ("**/Dockerfile", "Dockerfile", True),
        ("**/Dockerfile", "services/api/Dockerfile", True),
        ("Dockerfile", "Dockerfile", True),
        ("Dockerfile", "docker/Dockerfile", False),  # the whole path
        ("Dockerfile", "dockerfile", False),  # case-sensitive
        ("Dockerfile", "Dockerfile.dev", False),
        ("app?.py", "app1.py", True),
        ("deploy/chart/**", "deploy/chart/templates/x.yaml", True),
        ("file[1].txt", "file[1].txt", True),  # brackets are plain characters
        ("a.b", "axb", False),  # a dot is a dot
    ],
)
def test_glob_matches_whole_paths(pattern: str, path: str, matches: bool) -> None:
    assert bool(watched([pattern], [path])) is matches


def test_a_change_under_no_watched_path_nor_the_chart_is_skipped() -> None:
    skip = unwatched(["src/**", "Dockerfile"], "deploy/chart", changes("docs/a.md", "README.md"))
    assert skip is not None
    assert skip.reason == f"no file under WATCH_PATHS or CHART_PATH changed since {BASE[:7]}"


@pytest.mark.parametrize(
    "found",
    [
        changes("docs/a.md", "src/app.py"),  # one watched file is enough
        changes("deploy/chart/values.yaml"),  # the chart always counts
        changes("README.md", status="diverged"),  # a rewritten branch: doubt
        changes("README.md", status="behind"),
        changes(*[f"docs/{i}.md" for i in range(300)]),  # 300 listed: maybe cut
        changes("README.md", listed=300),
    ],
)
def test_any_watched_change_or_any_doubt_builds(found: Changes) -> None:
    assert unwatched(["src/**", "Dockerfile"], "deploy/chart", found) is None


def test_a_rename_out_of_a_watched_directory_counts() -> None:
    moved = changes("old/app.py", "src/app.py")  # the old name is listed as a path too
    assert unwatched(["src/**"], "chart", moved) is None
