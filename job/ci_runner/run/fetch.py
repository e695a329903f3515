"""``ci-runner fetch-context``: what the build pod's init container does before Kaniko starts.

The init container holds the GitHub token (from the token Secret) and nothing else; Kaniko,
which runs the app's Dockerfile, gets the unpacked context on a shared emptyDir and no GitHub
credential at all. The download and the extraction are the run's own (``GitHub.tarball``,
``archive``), with the same bounds; the exit code says whose fault a failure is (1: the
commit's archive, 3: GitHub), and the build watch reads it from the container's status.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import FetchSettings
from ..github.client import GitHub


def fetch_context(settings: FetchSettings, sha: str, into: Path) -> str:
    """Unpack BUILD_CONTEXT of commit ``sha`` into the directory ``into``; what was done.

    ``into`` is emptied first: the kubelet may run an init container again (a pod sandbox
    recreated), and a second run must not mix two extractions."""
    # Not at the top: tarfile is not for an idle run, which imports this package too.
    from ..archive import extract_context

    into.mkdir(parents=True, exist_ok=True)
    for child in into.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    where = f"{settings.repo}@{sha[:7]}"
    with GitHub(settings) as github, github.tarball(sha) as tarball:
        extract_context(tarball, settings.build_context, into, where, settings.tarball_timeout)
    return f"unpacked {settings.build_context!r} of {where} into {into}"
