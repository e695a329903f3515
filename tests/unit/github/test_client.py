"""The GitHub client against the GitHub fake, over real HTTP."""

from __future__ import annotations

import errno
import io
import os
import tempfile

import pytest
from ci_runner.errors import ConfigError, GitHubError, ServiceError
from ci_runner.github.client import GitHub

from tests.support.github_fake import GitHubFake
from tests.support.settings import app_settings

TOKEN = "fake-unit-token-0123456789"


def client(github: GitHubFake | str, **extra: str) -> GitHub:
    url = github if isinstance(github, str) else github.url
    return GitHub(app_settings(GITHUB_API_URL=url, API_TIMEOUT="2", **extra))


@pytest.fixture
def repo(github: GitHubFake) -> str:
    github.create_repo("acme/shop")
    return github.push("acme/shop", "main", {"README.md": "hi"}, message="first")


def test_unchanged_head_costs_no_rate_limit(github: GitHubFake, repo: str) -> None:
    with client(github) as gh:
        first = gh.head("main")
        assert first.sha == repo
        spent = github.rate_limit_remaining
        again = gh.head("main", first.etag)
    assert again.sha is None
    assert github.rate_limit_remaining == spent


def test_the_head_read_brings_the_message_in_the_same_conditional_request(
    github: GitHubFake, repo: str
) -> None:
    with client(github) as gh:
        first = gh.head("main")
        unchanged = gh.head("main", first.etag)
    assert (first.sha, first.message) == (repo, "first")
    assert (unchanged.sha, unchanged.message) == (None, None)
    (read, conditional) = github.requests
    assert read.path == conditional.path == "/repos/acme/shop/commits/main"
    assert conditional.status == 304


def test_compare_lists_the_changed_paths(github: GitHubFake, repo: str) -> None:
    head = github.push("acme/shop", "main", {"src/app.py": "x", "README.md": None}, message="2")
    with client(github) as gh:
        changes = gh.compare(repo, head)
    assert (changes.base, changes.status, changes.listed) == (repo, "ahead", 2)
    assert changes.paths == ("README.md", "src/app.py")


@pytest.mark.parametrize("fault", ["gone", "500", "junk"])
def test_a_compare_github_cannot_answer_is_a_github_error(
    github: GitHubFake, repo: str, fault: str
) -> None:
    base = "0" * 40 if fault == "gone" else repo
    if fault == "500":
        github.fail_next("GET", "/compare/", 500)
    if fault == "junk":
        github.fail_next("GET", "/compare/", 200, body="<html>proxy login</html>")
    with client(github) as gh, pytest.raises(GitHubError, match="comparing"):
        gh.compare(base, repo)


def test_a_new_commit_is_seen_despite_the_etag(github: GitHubFake, repo: str) -> None:
    with client(github) as gh:
        etag = gh.head("main").etag
        newer = github.push("acme/shop", "main", {"README.md": "more"}, message="second")
        assert gh.head("main", etag).sha == newer


def test_branch_with_a_slash(github: GitHubFake, repo: str) -> None:
    sha = github.push("acme/shop", "feature/x", {"a": "b"}, message="feature")
    with client(github) as gh:
        assert gh.head("feature/x").sha == sha


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("500", "GitHub answered 500"),
        ("rate", "rate limit exhausted"),
        ("401", "refused the token"),
        ("missing", "BRANCH 'no-such-branch' is not a branch of acme/shop"),
        ("slow", "did not answer within 2s"),
    ],
)
def test_failures_are_one_clear_line_without_the_token(
    github: GitHubFake, repo: str, fault: str, message: str
) -> None:
    branch = "main"
    if fault == "500":
        github.fail_next("GET", "/commits/", 500)
    elif fault == "rate":
        github.rate_limit_exhausted()
    elif fault == "401":
        github.require_token("another-token")
    elif fault == "missing":
        branch = "no-such-branch"
    else:
        github.slow_next("/commits/")
    expected = ConfigError if fault in {"missing", "401"} else GitHubError
    with client(github, GIT_TOKEN=TOKEN) as gh, pytest.raises(expected, match=message) as e:
        gh.head(branch)
    assert TOKEN not in str(e.value)
    assert "\n" not in str(e.value)


def test_a_branch_github_does_not_know_is_named_with_the_ones_it_does(
    github: GitHubFake, repo: str
) -> None:
    github.push("acme/shop", "release/1.0", {"a": "b"}, message="release")
    with client(github) as gh, pytest.raises(ConfigError) as e:
        gh.head("mian")
    assert str(e.value) == (
        "BRANCH 'mian' is not a branch of acme/shop (GitHub answered 422): "
        "it has main, release/1.0; check BRANCH"
    )


def test_unreachable_github(github: GitHubFake) -> None:
    url = github.url
    github.stop()
    with client(url) as gh, pytest.raises(GitHubError, match="unreachable"):
        gh.head("main")


def test_tarball_follows_the_redirect_without_sending_the_token(
    github: GitHubFake, repo: str
) -> None:
    github.require_token(TOKEN)
    with client(github, GIT_TOKEN=TOKEN) as gh, gh.tarball(repo) as tarball:
        assert tarball.read(2) == b"\x1f\x8b"
    downloads = [r for r in github.requests if r.host == "download"]
    assert downloads
    assert all(TOKEN not in str(r.headers) for r in downloads)


def test_not_a_sha_is_refused(github: GitHubFake, repo: str) -> None:
    github.fail_next("GET", "/commits/", 200, body="<html>proxy login</html>")
    with client(github) as gh, pytest.raises(GitHubError, match="not a commit SHA"):
        gh.head("main")


def test_a_repository_github_does_not_show_is_a_configuration_error(github: GitHubFake) -> None:
    with client(github) as gh, pytest.raises(ConfigError, match="no repository 'acme/shop'") as e:
        gh.head("main")
    assert "it may be private and no GIT_TOKEN" in str(e.value)


def test_without_a_token_the_shared_rate_limit_is_named_once(
    github: GitHubFake, repo: str, caplog: pytest.LogCaptureFixture
) -> None:
    with client(github) as gh:
        gh.head("main")
        gh.head("main")
    warnings = [r for r in caplog.records if "60-per-hour" in r.getMessage()]
    assert len(warnings) == 1


def test_a_trickling_tarball_ends_at_the_deadline_not_when_it_finishes(
    github: GitHubFake, repo: str
) -> None:
    github.trickle_next(r"legacy\.tar\.gz", bytes_per_second=1)  # a byte a second
    with (
        client(github, TARBALL_TIMEOUT="3") as gh,
        pytest.raises(GitHubError, match=r"took longer than 3s \(TARBALL_TIMEOUT\)"),
    ):
        gh.tarball(repo)


def test_a_slow_but_steady_tarball_may_take_longer_than_api_timeout(
    github: GitHubFake, repo: str
) -> None:
    with client(github) as gh, gh.tarball(repo) as whole:
        size = len(whole.read())
    rate = size / 4  # the whole body in about 4 s, twice API_TIMEOUT (2 s)
    github.trickle_next(r"legacy\.tar\.gz", bytes_per_second=rate)
    with client(github) as gh, gh.tarball(repo) as slow:
        assert len(slow.read()) == size


def test_a_tarball_that_stalls_ends_by_the_progress_deadline(github: GitHubFake, repo: str) -> None:
    github.trickle_next(r"legacy\.tar\.gz", bytes_per_second=0.2)  # a byte every 5 s
    with (
        client(github, TARBALL_TIMEOUT="60") as gh,
        pytest.raises(GitHubError, match=r"stalled: no byte for 2s \(API_TIMEOUT\)"),
    ):
        gh.tarball(repo)


class _FullDisk(io.BytesIO):
    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_tmpdir_is_named_as_such_not_blamed_on_github(
    github: GitHubFake, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tarball is kept on TMPDIR (the pod's emptyDir), not in memory.
    monkeypatch.setattr(tempfile, "TemporaryFile", _FullDisk)
    with client(github) as gh, pytest.raises(ServiceError) as raised:
        gh.tarball(repo)
    assert (
        str(raised.value)
        == f"cannot keep the tarball of {repo[:7]} on TMPDIR: No space left on device"
    )
    assert not isinstance(raised.value, GitHubError)
