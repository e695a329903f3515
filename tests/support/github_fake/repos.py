"""In-memory repositories: branches, commits (each holding its whole tree) and tarballs.

No HTTP here: this is the data the fake's API answers from.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SHA_RE = re.compile(r"[0-9a-f]{40}")
# What git refuses in a ref name (git check-ref-format), checked loosely.
_BAD_REF_RE = re.compile(r"(^$|^/|/$|//|\.\.|@\{|[\x00-\x20~^:?*\[\\\x7f]|\.lock$|^\.|/\.)")


def is_valid_ref(ref: str) -> bool:
    """Whether ``ref`` could name a branch or commit at all (git's ref-name rules)."""
    return _BAD_REF_RE.search(ref) is None


@dataclass(frozen=True)
class Commit:
    """One commit; ``files`` is the whole tree at that commit (path -> content)."""

    sha: str
    parent: str | None
    message: str
    files: dict[str, bytes]
    date: datetime

    @property
    def tree_sha(self) -> str:
        """A stable stand-in for git's tree id: a digest of the paths and contents."""
        digest = hashlib.sha1()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + self.files[path] + b"\0")
        return digest.hexdigest()


@dataclass
class Repository:
    """A repository: its branches (name -> head sha), every commit, and archive overrides."""

    owner: str
    name: str
    private: bool
    default_branch: str
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    tarballs: dict[str, bytes] = field(default_factory=dict)
    """Hand-made archives served instead of the built one, by commit sha."""
    statuses: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def push(
        self, branch: str, files: Mapping[str, str | bytes | None], message: str, counter: int
    ) -> Commit:
        """Add a commit on ``branch`` (created if absent) on top of its head; return it."""
        if not is_valid_ref(branch):
            raise ValueError(f"not a valid branch name: {branch!r}")
        parent = self.commits[self.branches[branch]] if branch in self.branches else None
        tree = dict(parent.files) if parent else {}
        for path, content in files.items():
            _check_path(path)
            if content is None:
                if tree.pop(path, None) is None:
                    raise ValueError(f"cannot delete {path!r}: not in the tree")
            else:
                tree[path] = content.encode() if isinstance(content, str) else bytes(content)
        _check_tree(tree)
        seed = hashlib.sha1()
        for path in sorted(tree):
            seed.update(path.encode() + b"\0" + tree[path] + b"\0")
        seed.update(f"{parent.sha if parent else ''}\0{message}\0{counter}".encode())
        commit = Commit(
            sha=seed.hexdigest(),
            parent=parent.sha if parent else None,
            message=message,
            files=tree,
            date=datetime.now(UTC).replace(microsecond=0),
        )
        self.commits[commit.sha] = commit
        self.branches[branch] = commit.sha
        return commit

    def resolve(self, ref: str) -> Commit | None:
        """The commit ``ref`` names: a branch (also as ``refs/heads/x``/``heads/x``) or a sha."""
        for prefix in ("refs/heads/", "heads/", ""):
            if ref.startswith(prefix) and ref[len(prefix) :] in self.branches:
                return self.commits[self.branches[ref[len(prefix) :]]]
        return self.commits.get(ref) if SHA_RE.fullmatch(ref) else None

    def archive_prefix(self, commit: Commit) -> str:
        """GitHub's single top-level directory in a tarball: ``<owner>-<repo>-<sha7>``."""
        return f"{self.owner}-{self.name}-{commit.sha[:7]}"

    def tarball(self, commit: Commit) -> bytes:
        """The gzipped tar GitHub would serve for ``commit`` (or the hand-made one, if set)."""
        if commit.sha in self.tarballs:
            return self.tarballs[commit.sha]
        return build_tarball(self.archive_prefix(commit), commit)


def build_tarball(prefix: str, commit: Commit) -> bytes:
    """A ``git archive``-like tar.gz: a pax header naming the commit, dirs, then files."""
    mtime = int(commit.date.timestamp())
    dirs = {prefix}
    for path in commit.files:
        parts = path.split("/")[:-1]
        dirs.update(f"{prefix}/{'/'.join(parts[: i + 1])}" for i in range(len(parts)))
    entries = sorted(dirs | {f"{prefix}/{path}" for path in commit.files})
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT, pax_headers={"comment": commit.sha}
    ) as tar:
        for name in entries:
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.uname = info.gname = "root"
            if name in dirs:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = commit.files[name[len(prefix) + 1 :]]
                info.mode, info.size = 0o644, len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a relative path inside the repository: {path!r}")


def _check_tree(tree: dict[str, bytes]) -> None:
    for path in tree:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in tree:
                raise ValueError(f"{path!r} needs {'/'.join(parts[:i])!r} to be a directory")
