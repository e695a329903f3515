"""Safe extraction of one directory of a GitHub commit tarball: the chart (CHART_PATH) for the
runner, the build context (BUILD_CONTEXT) for the build pod's init container.

The archive comes from the network, and a repository can hold symlinks that point anywhere, so
we trust nothing in it: one top-level directory as GitHub makes them, only regular files and
directories (and, in a build context, symlinks that stay inside it) under the chosen directory,
bounded counts and sizes, and Python's ``data`` extraction filter as a second line of defence.

A big repository is read in one streaming pass: only the chart's files are written, and what
the rest of the repository inflates to does not count against any size. The tarball is bounded
by its compressed size (``github/client.py``, 200 MiB) and the whole pass by time
(TARBALL_TIMEOUT), so a gzip bomb outside the chart costs at most that time, in constant
memory (at most ``CHUNK`` bytes are inflated at once); one inside the chart is refused by the
sizes its tar headers declare, before it is inflated. Chosen over fetching the chart through
the git trees and blobs API (``GET /repos/{o}/{r}/git/trees/{sha}?recursive=1``, whose answer
is ``truncated`` past 100,000 entries or 7 MB, and one ``GET .../git/blobs/{sha}`` per file,
docs.github.com/rest/git/trees and /rest/git/blobs): that costs a request per chart file
against the rate limit, and two code paths where one serves every size.
"""

from __future__ import annotations

import gzip
import posixpath
import shutil
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import ArchiveError, BadCommit

MAX_CHART_FILES = 2_000
MAX_CHART_BYTES = 50 * 1024 * 1024
# A build context is what Kaniko reads: more room than a chart, still bounded by the sizes the
# tar headers declare (the build pod's context volume is sized for it, kube/build_job.py).
MAX_CONTEXT_FILES = 100_000
MAX_CONTEXT_BYTES = 1024 * 1024 * 1024
CHUNK = 1024 * 1024
"""The most inflated at once, and tarfile's read size when it skips a file outside the chart."""


class _Inflated:
    """The decompressed tar stream for ``tarfile``'s streaming mode, which only reads: at most
    CHUNK bytes inflated per read (gzip's reader bounds its output, unlike tarfile's own gzip
    stream), and each read past the deadline raises ArchiveError."""

    def __init__(
        self, tarball: IO[bytes], within: float, where: str, clock: Callable[[], float]
    ) -> None:
        self._gzip = gzip.GzipFile(fileobj=tarball)
        self._within = within
        self._deadline = clock() + within
        self._clock = clock
        self._where = where

    def read(self, size: int | None = -1) -> bytes:
        if self._clock() > self._deadline:
            raise ArchiveError(
                f"the tarball of {self._where} did not unpack within {self._within:g}s "
                f"(TARBALL_TIMEOUT; {self._gzip.tell()} bytes inflated)"
            )
        return self._gzip.read(CHUNK if size is None or size < 0 else min(size, CHUNK))


@dataclass(frozen=True)
class _Part:
    """What is extracted: which directory, named how in messages, within what bounds."""

    setting: str
    path: str
    what: str
    max_files: int
    max_bytes: int
    links: bool
    """Whether symlinks that stay inside the directory are kept (a build context's may be)."""


def extract_chart(
    tarball: IO[bytes],
    chart_path: str,
    dest: Path,
    where: str,
    within: float = 600,
    clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Extract ``chart_path`` from the gzip ``tarball`` into ``dest``, in one pass of at most
    ``within`` seconds; return the chart directory.

    ``where`` names the commit in messages. Raises ArchiveError for a malformed or hostile
    archive, BadCommit when the commit has no chart there (nothing is left in ``dest`` then).
    """
    part = _Part("CHART_PATH", chart_path, "the chart", MAX_CHART_FILES, MAX_CHART_BYTES, False)
    target = dest / "chart"
    tar = _open(tarball, within, where, clock)
    target.mkdir()
    try:
        with tar:
            chosen = _extract(tar, part, target, where)
        if not any(m.name.endswith("/Chart.yaml") and m.isfile() for m in chosen):
            raise BadCommit(f"CHART_PATH {chart_path!r} holds no Chart.yaml in {where}")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # a bad archive leaves nothing behind
        raise
    return target


def extract_context(
    tarball: IO[bytes],
    context_path: str,
    dest: Path,
    where: str,
    within: float = 600,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Extract the build context ``context_path`` ("." for the whole repository) from the gzip
    ``tarball`` into the existing, empty directory ``dest`` (Kaniko's ``dir://`` context), in
    one pass of at most ``within`` seconds.

    Symlinks are kept when they point inside the context (a git clone keeps them too, and
    Dockerfiles ``COPY`` through them); one pointing outside it, a hard link or a special file
    is refused (ArchiveError), as is a context past MAX_CONTEXT_FILES or MAX_CONTEXT_BYTES.
    BadCommit when the commit has no such directory. A refused archive leaves ``dest`` empty."""
    part = _Part(
        "BUILD_CONTEXT",
        context_path,
        "the build context",
        MAX_CONTEXT_FILES,
        MAX_CONTEXT_BYTES,
        links=True,
    )
    tar = _open(tarball, within, where, clock)
    try:
        with tar:
            _extract(tar, part, dest, where)
    except BaseException:
        for child in dest.iterdir():  # a bad archive leaves nothing behind
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise


def _open(
    tarball: IO[bytes], within: float, where: str, clock: Callable[[], float]
) -> tarfile.TarFile:
    """The tarball as a streamed tar (tarfile's ``r|``), inflated at most CHUNK at a time."""
    try:
        inflated = _Inflated(tarball, within, where, clock)
        tar: tarfile.TarFile = tarfile.open(fileobj=inflated, mode="r|", bufsize=CHUNK)  # type: ignore[call-overload]  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ArchiveError(f"the tarball of {where} is not a gzip tar archive") from e
    return tar


def _extract(tar: tarfile.TarFile, part: _Part, target: Path, where: str) -> list[tarfile.TarInfo]:
    """Extract the part's files as the stream passes them (a streamed tar cannot go back);
    the part's members, as the archive named them."""
    chosen: list[tarfile.TarInfo] = []
    for member, relative in _part_members(tar, part, where):
        chosen.append(member)
        if member.isdir():
            continue  # parents are made as files land; modes from the archive don't matter
        # Strip GitHub's top directory and the part's path so the part lands at ``target``.
        renamed = member.replace(name=relative, deep=False)
        try:
            tar.extract(renamed, target, filter="data")
        except ArchiveError:
            raise
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise ArchiveError(
                f"the tarball of {where} has a member that cannot be extracted safely: {relative!r}"
            ) from e
    return chosen


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Every member in turn, forgetting each: tarfile keeps the members it read in a list,
    which a repository of a million files would grow without bound."""
    while (member := tar.next()) is not None:
        # ``members`` is that list (TarFile.next appends to it; typeshed leaves it out).
        tar.members.clear()  # type: ignore[attr-defined]
        yield member


def _part_members(
    tar: tarfile.TarFile, part: _Part, where: str
) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """Check every member; yield those under the part's path with their path inside it."""
    top: str | None = None
    count = 0
    total = 0
    try:
        for member in _members(tar):
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
                    f"the tarball of {where} has a link or special file in {part.what}: {rest!r}"
                    + (" (a symlink must point inside it)" if member.issym() else "")
                )
            # Refused by the size its header declares, before a byte of it is inflated.
            total += member.size
            count += 1
            if count > part.max_files or total > part.max_bytes:
                raise ArchiveError(
                    f"{part.what} in the tarball of {where} is over {part.max_files} files "
                    f"or {part.max_bytes} bytes (at {rest!r}, {member.size} bytes)"
                )
            yield member, relative
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ArchiveError(f"the tarball of {where} is corrupt") from e
    if top is None:
        raise ArchiveError(f"the tarball of {where} is empty")
    if count == 0:
        raise BadCommit(f"{part.setting} {part.path!r} does not exist in {where}")


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
