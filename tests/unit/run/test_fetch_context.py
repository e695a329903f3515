"""``ci-runner fetch-context``, the build pod's init container, as the kubelet runs it: a
process with its environment, against the GitHub fake over real HTTP. Its exit code and the
termination-message file are what the build watch reads."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.github_fake import GitHubFake

TOKEN = "fake-init-token-0123456789"


def fetch(
    github: GitHubFake | str, sha: str, into: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    url = github if isinstance(github, str) else github.url
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "REPO": "acme/shop",
        "GITHUB_API_URL": url,
        "API_TIMEOUT": "5",
        **env,
    }
    message = into.parent / "termination-log"
    args = ["fetch-context", f"--sha={sha}", f"--into={into}", f"--message-file={message}"]
    return subprocess.run(
        [sys.executable, "-m", "ci_runner", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def termination_message(into: Path) -> str:
    path = into.parent / "termination-log"
    return path.read_text() if path.exists() else ""


@pytest.fixture
def repo(github: GitHubFake) -> str:
    github.create_repo("acme/shop", private=True)
    github.require_token(TOKEN)
    return github.push(
        "acme/shop",
        "main",
        {
            "app/Dockerfile": "FROM scratch\nCOPY . /\n",
            "app/src/main.py": "print('hi')\n",
            "deploy/chart/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
            "README.md": "shop\n",
        },
    )


def test_it_unpacks_the_build_context_of_the_commit_with_the_token(
    github: GitHubFake, repo: str, tmp_path: Path
) -> None:
    into = tmp_path / "workspace"
    into.mkdir()
    (into / "stale").write_text("from an earlier run of the init container")
    done = fetch(github, repo, into, GIT_TOKEN=TOKEN, BUILD_CONTEXT="app")
    assert done.returncode == 0, done.stderr
    found = sorted(str(p.relative_to(into)) for p in into.rglob("*") if p.is_file())
    assert found == ["Dockerfile", "src/main.py"]
    assert (into / "Dockerfile").read_text() == "FROM scratch\nCOPY . /\n"
    assert TOKEN not in done.stdout + done.stderr
    assert termination_message(into) == ""


def test_the_whole_repository_by_default(github: GitHubFake, repo: str, tmp_path: Path) -> None:
    into = tmp_path / "workspace"
    done = fetch(github, repo, into, GIT_TOKEN=TOKEN)
    assert done.returncode == 0, done.stderr
    assert (into / "README.md").read_text() == "shop\n"
    assert (into / "app" / "Dockerfile").exists()


def hostile(top: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{top}/app/Dockerfile")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"FROM "))
        escape = tarfile.TarInfo(f"{top}/app/passwd")
        escape.type, escape.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(escape)
    return buffer.getvalue()


def test_a_bad_archive_is_the_commits_failure_exit_1(
    github: GitHubFake, repo: str, tmp_path: Path
) -> None:
    github.set_tarball("acme/shop", repo, hostile(f"acme-shop-{repo[:7]}"))
    into = tmp_path / "workspace"
    done = fetch(github, repo, into, GIT_TOKEN=TOKEN, BUILD_CONTEXT="app")
    assert done.returncode == 1, done.stderr
    said = (
        f"the tarball of acme/shop@{repo[:7]} has a link or special file in the build context: "
        "'app/passwd' (a symlink must point inside it)"
    )
    assert done.stderr.strip() == f"Error: {said}"
    assert termination_message(into) == said
    assert list(into.iterdir()) == []


def test_a_missing_build_context_is_the_commits_failure_exit_1(
    github: GitHubFake, repo: str, tmp_path: Path
) -> None:
    into = tmp_path / "workspace"
    done = fetch(github, repo, into, GIT_TOKEN=TOKEN, BUILD_CONTEXT="web")
    assert done.returncode == 1, done.stderr
    assert (
        termination_message(into) == f"BUILD_CONTEXT 'web' does not exist in acme/shop@{repo[:7]}"
    )


def test_github_unreachable_is_an_outage_exit_3(
    github: GitHubFake, repo: str, tmp_path: Path
) -> None:
    url = github.url
    github.stop()
    into = tmp_path / "workspace"
    done = fetch(url, repo, into, GIT_TOKEN=TOKEN)
    assert done.returncode == 3, done.stderr
    assert "GitHub is unreachable" in termination_message(into)


def test_a_github_5xx_is_an_outage_exit_3(github: GitHubFake, repo: str, tmp_path: Path) -> None:
    github.fail_next("GET", "/tarball/", 502, times=5)
    into = tmp_path / "workspace"
    done = fetch(github, repo, into, GIT_TOKEN=TOKEN)
    assert done.returncode == 3, done.stderr
    assert termination_message(into)


def test_wrong_settings_are_exit_2_and_the_token_is_never_shown(
    github: GitHubFake, repo: str, tmp_path: Path
) -> None:
    into = tmp_path / "workspace"
    done = fetch(github, repo, into, GIT_TOKEN=TOKEN, BUILD_CONTEXT="../up")
    assert done.returncode == 2
    assert "BUILD_CONTEXT" in done.stderr
    bad_sha = fetch(github, "main", into, GIT_TOKEN=TOKEN)
    assert bad_sha.returncode == 2
    assert "--sha must be a full commit SHA" in bad_sha.stderr
    assert TOKEN not in done.stderr + bad_sha.stderr + termination_message(into)
