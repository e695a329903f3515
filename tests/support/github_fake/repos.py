"""In-memory repositories: branches, commits (each holding its whole tree) and tarballs.

No HTTP here: this is the data the fake's API answers from.
"""

from __future__ import annotations

import hashlib
import re
import struct
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

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


def build_tarball(prefix: str, commit: Commit, zeros: Mapping[str, int] | None = None) -> bytes:
    """A ``git archive``-like tar.gz: a pax header naming the commit, dirs, then files; and
    ``zeros`` (path: size), files of zeros that are not in the commit, written in time and
    memory of their compressed size (a repository that inflates to gigabytes, cheaply)."""
    zeros = dict(zeros or {})
    mtime = int(commit.date.timestamp())
    paths = set(commit.files) | set(zeros)
    dirs = {prefix}
    for path in paths:
        parts = path.split("/")[:-1]
        dirs.update(f"{prefix}/{'/'.join(parts[: i + 1])}" for i in range(len(parts)))
    entries = sorted(dirs | {f"{prefix}/{path}" for path in paths})
    out = _GzipWriter()
    out.write(tarfile.TarInfo.create_pax_global_header({"comment": commit.sha}))
    for name in entries:
        info = tarfile.TarInfo(name)
        info.mtime = mtime
        info.uname = info.gname = "root"
        path = name[len(prefix) + 1 :]
        if name in dirs:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            out.write(info.tobuf(tarfile.PAX_FORMAT))
        elif path in zeros:
            info.mode, info.size = 0o644, zeros[path]
            out.write(info.tobuf(tarfile.PAX_FORMAT))
            out.zeros(info.size + -info.size % tarfile.BLOCKSIZE)
        else:
            data = commit.files[path]
            info.mode, info.size = 0o644, len(data)
            out.write(info.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE))
    out.write(bytes(2 * tarfile.BLOCKSIZE))  # the end-of-archive marker
    return out.close(tarfile.RECORDSIZE)


_MIB = 1 << 20


class _GzipWriter:
    """A gzip stream (RFC 1952) written by hand, so that a long run of zeros costs one
    compressed MiB repeated: raw deflate blocks after a full flush reference nothing before
    them, so independently compressed ones may be laid end to end (RFC 1951, 3.2.3)."""

    _zero_block: bytes | None = None

    def __init__(self) -> None:
        self._parts = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"]  # no name, no mtime
        self._crc = 0
        self._size = 0
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, -15)

    def write(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._parts.append(self._deflate.compress(data))

    def zeros(self, count: int) -> None:
        self._parts.append(self._deflate.flush(zlib.Z_FULL_FLUSH))
        block = _GzipWriter._zero_block
        if block is None:
            once = zlib.compressobj(9, zlib.DEFLATED, -15)
            block = _GzipWriter._zero_block = once.compress(bytes(_MIB)) + once.flush(
                zlib.Z_FULL_FLUSH
            )
        mib = bytes(_MIB)
        for _ in range(count // _MIB):
            self._crc = zlib.crc32(mib, self._crc)
            self._parts.append(block)
        self._size += count // _MIB * _MIB
        # What follows must not reach back past the blocks laid in: a fresh compressor.
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.write(bytes(count % _MIB))

    def close(self, record: int) -> bytes:
        """The whole stream, the tar padded to a multiple of ``record`` as tar pads it."""
        self.write(bytes(-self._size % record))
        self._parts.append(self._deflate.flush())
        self._parts.append(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        return b"".join(self._parts)


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
