"""Safe extraction of one directory of a GitHub commit tarball: the chart (CHART_PATH) for the
runner, the build context (BUILD_CONTEXT) for the build pod's init container.

The archive comes from the network, and a repository can hold symlinks that point anywhere, so
we trust nothing in it: one top-level directory as GitHub makes them, only regular files and
directories (and, in a build context, symlinks that stay inside it) under the chosen directory,
bounded counts and sizes, and Python's ``data`` extraction filter as a second line of defence.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import ArchiveError, BadCommit

MAX_MEMBERS = 20_000
MAX_CHART_FILES = 2_000
MAX_CHART_BYTES = 50 * 1024 * 1024
# What the whole archive may unpack to: a small gzip that inflates to gigabytes (outside the
# chart, where nothing is extracted) is refused once it passes this, in a few seconds.
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
# A build context is all of BUILD_CONTEXT: as many members as the archive may have, as many
# bytes as it may unpack to (the build pod's context volume is sized for that).
MAX_CONTEXT_BYTES = MAX_UNPACKED_BYTES


@dataclass(frozen=True)
class _Part:
    """What is extracted: which directory, under what name in messages, within what bounds."""

    setting: str
    path: str
    max_files: int
    max_bytes: int
    links: bool
    """Whether symlinks that stay inside the directory are kept (a build context's may be)."""


class _Inflated:
    """The decompressed tar stream for ``tarfile``: reads and seeks (which tarfile uses to skip
    members) past ``limit`` bytes raise ArchiveError instead of inflating on."""

    def __init__(self, tarball: IO[bytes], limit: int, where: str) -> None:
        self._gzip = gzip.GzipFile(fileobj=tarball)
        self._limit = limit
        self._where = where

    def _refuse_past(self, offset: int) -> None:
        if offset > self._limit:
            raise ArchiveError(f"the tarball of {self._where} unpacks to over {self._limit} bytes")

    def read(self, size: int | None = -1) -> bytes:
        room = self._limit + 1 - self._gzip.tell()
        data = self._gzip.read(room if size is None or size < 0 else min(size, room))
        self._refuse_past(self._gzip.tell())
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._gzip.tell() + offset
        self._refuse_past(target)
        return self._gzip.seek(target)

    def tell(self) -> int:
        return self._gzip.tell()


def extract_chart(tarball: IO[bytes], chart_path: str, dest: Path, where: str) -> Path:
    """Extract ``chart_path`` from the gzip ``tarball`` into ``dest``; return the chart directory.

    ``where`` names the commit in messages. Raises ArchiveError for a malformed or hostile
    archive, BadCommit when the commit has no chart there (nothing is extracted then).
    """
    part = _Part("CHART_PATH", chart_path, MAX_CHART_FILES, MAX_CHART_BYTES, links=False)
    target = dest / "chart"

    def check(chosen: list[tuple[tarfile.TarInfo, str]]) -> None:
        if not any(m.name.endswith("/Chart.yaml") and m.isfile() for m, _ in chosen):
            raise BadCommit(f"CHART_PATH {chart_path!r} holds no Chart.yaml in {where}")
        target.mkdir()

    _extract(tarball, part, target, where, check)
    return target


def extract_context(tarball: IO[bytes], context_path: str, dest: Path, where: str) -> None:
    """Extract the build context ``context_path`` ("." for the whole repository) from the gzip
    ``tarball`` into the existing, empty directory ``dest``, as Kaniko's ``dir://`` context.

    Symlinks are kept when they point inside the context (a git clone keeps them too), since
    Dockerfiles ``COPY`` through them; one pointing outside it, a hard link or a special file
    is refused (ArchiveError), as is a context past MAX_CONTEXT_BYTES. BadCommit when the
    commit has no such directory."""
    part = _Part("BUILD_CONTEXT", context_path, MAX_MEMBERS, MAX_CONTEXT_BYTES, links=True)
    _extract(tarball, part, dest, where, lambda chosen: None)


def _extract(
    tarball: IO[bytes],
    part: _Part,
    target: Path,
    where: str,
    check: Callable[[list[tuple[tarfile.TarInfo, str]]], None],
) -> None:
    """Check every member, let ``check`` see those chosen, then extract them into ``target``."""
    try:
        inflated = _Inflated(tarball, MAX_UNPACKED_BYTES, where)
        tar = tarfile.open(fileobj=inflated, mode="r:")  # type: ignore[call-overload]  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ArchiveError(f"the tarball of {where} is not a gzip tar archive") from e
    with tar:
        chosen = _members(tar, part, where)
        check(chosen)
        for member, relative in chosen:
            if member.isdir():
                continue  # parents are made as files land; modes from the archive don't matter
            # Strip GitHub's top directory and the part's path so the part lands at ``target``.
            member = member.replace(name=relative, deep=False)
            try:
                tar.extract(member, target, filter="data")
            except (tarfile.TarError, OSError) as e:
                raise ArchiveError(
                    f"the tarball of {where} has a member that cannot be extracted safely: "
                    f"{relative!r}"
                ) from e


def _members(tar: tarfile.TarFile, part: _Part, where: str) -> list[tuple[tarfile.TarInfo, str]]:
    """Check every member; return those under the part's path with their path inside it."""
    top: str | None = None
    chosen: list[tuple[tarfile.TarInfo, str]] = []
    total = 0
    count = 0
    what = "the chart" if part.setting == "CHART_PATH" else "the build context"
    try:
        for member in tar:
            count += 1
            if count > MAX_MEMBERS:
                raise ArchiveError(f"the tarball of {where} has more than {MAX_MEMBERS} members")
            name = member.name
            if name.startswith("/") or "\\" in name or ".." in name.split("/"):
                raise ArchiveError(f"the tarball of {where} has an unsafe path: {name!r}")
            if member.type == tarfile.XGLTYPE or member.name == "pax_global_header":
                continue  # GitHub's pax header carrying the commit id
            head, _, rest = name.partition("/")
            if top is None:
                top = head
            elif head != top:
                raise ArchiveError(
                    f"the tarball of {where} has more than one top-level directory "
                    f"({top!r}, {head!r})"
                )
            relative = _inside(rest.rstrip("/"), part.path)
            if relative is None:
                continue
            if not (member.isfile() or member.isdir() or _kept_link(member, relative, part)):
                raise ArchiveError(
                    f"the tarball of {where} has a link or special file in {what}: {rest!r}"
                    + (" (a symlink must point inside it)" if member.issym() else "")
                )
            total += member.size
            if len(chosen) >= part.max_files or total > part.max_bytes:
                raise ArchiveError(
                    f"{what} in the tarball of {where} is over {part.max_files} files "
                    f"or {part.max_bytes} bytes (at {rest!r}, {member.size} bytes)"
                )
            chosen.append((member, relative))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ArchiveError(f"the tarball of {where} is corrupt") from e
    if top is None:
        raise ArchiveError(f"the tarball of {where} is empty")
    if not chosen:
        raise BadCommit(f"{part.setting} {part.path!r} does not exist in {where}")
    return chosen


def _kept_link(member: tarfile.TarInfo, relative: str, part: _Part) -> bool:
    """Whether ``member`` is a symlink to keep: relative, and resolving inside the part (the
    ``data`` filter refuses the others too; this says so before anything is written)."""
    if not (part.links and member.issym()) or member.linkname.startswith("/"):
        return False
    target = posixpath.normpath(posixpath.join(posixpath.dirname(relative), member.linkname))
    return target != ".." and not target.startswith("../")


def _inside(path: str, chart_path: str) -> str | None:
    """``path`` relative to ``chart_path`` ("." for the directory itself), or None if outside.
    A ``chart_path`` of "." (BUILD_CONTEXT's default) is the whole repository."""
    if chart_path == ".":
        return posixpath.normpath(path) if path else "."
    if path == chart_path:
        return "."
    prefix = chart_path + "/"
    if path.startswith(prefix):
        return posixpath.normpath(path[len(prefix) :])
    return None
