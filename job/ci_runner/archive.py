"""Safe extraction of the chart directory from a GitHub commit tarball.

The archive comes from the network, and a repository can hold symlinks that point anywhere, so
we trust nothing in it: one top-level directory as GitHub makes them, only regular files and
directories under CHART_PATH, bounded counts and sizes, and Python's ``data`` extraction filter
as a second line of defence.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
import zlib
from pathlib import Path
from typing import IO

from .errors import ArchiveError, BadCommit

MAX_MEMBERS = 20_000
MAX_CHART_FILES = 2_000
MAX_CHART_BYTES = 50 * 1024 * 1024
# What the whole archive may unpack to: a small gzip that inflates to gigabytes (outside the
# chart, where nothing is extracted) is refused once it passes this, in a few seconds.
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024


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
    try:
        inflated = _Inflated(tarball, MAX_UNPACKED_BYTES, where)
        tar = tarfile.open(fileobj=inflated, mode="r:")  # type: ignore[call-overload]  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ArchiveError(f"the tarball of {where} is not a gzip tar archive") from e
    with tar:
        chosen = _chart_members(tar, chart_path, where)
        if not any(m.name.endswith("/Chart.yaml") and m.isfile() for m, _ in chosen):
            raise BadCommit(f"CHART_PATH {chart_path!r} holds no Chart.yaml in {where}")
        target = dest / "chart"
        target.mkdir()
        for member, relative in chosen:
            if member.isdir():
                continue  # parents are made as files land; modes from the archive don't matter
            # Strip GitHub's top directory and CHART_PATH so the chart lands at ``target``.
            member = member.replace(name=relative, deep=False)
            try:
                tar.extract(member, target, filter="data")
            except (tarfile.TarError, OSError) as e:
                raise ArchiveError(
                    f"the tarball of {where} has a member that cannot be extracted safely: "
                    f"{relative!r}"
                ) from e
    return target


def _chart_members(
    tar: tarfile.TarFile, chart_path: str, where: str
) -> list[tuple[tarfile.TarInfo, str]]:
    """Check every member; return those under CHART_PATH with their path inside the chart."""
    top: str | None = None
    chosen: list[tuple[tarfile.TarInfo, str]] = []
    total = 0
    count = 0
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
            relative = _inside(rest.rstrip("/"), chart_path)
            if relative is None:
                continue
            if not (member.isfile() or member.isdir()):
                raise ArchiveError(
                    f"the tarball of {where} has a link or special file in the chart: {rest!r}"
                )
            total += member.size
            if len(chosen) >= MAX_CHART_FILES or total > MAX_CHART_BYTES:
                raise ArchiveError(
                    f"the chart in the tarball of {where} is over {MAX_CHART_FILES} files "
                    f"or {MAX_CHART_BYTES} bytes (at {rest!r}, {member.size} bytes)"
                )
            chosen.append((member, relative))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ArchiveError(f"the tarball of {where} is corrupt") from e
    if top is None:
        raise ArchiveError(f"the tarball of {where} is empty")
    if not chosen:
        raise BadCommit(f"CHART_PATH {chart_path!r} does not exist in {where}")
    return chosen


def _inside(path: str, chart_path: str) -> str | None:
    """``path`` relative to ``chart_path`` ("." for the directory itself), or None if outside."""
    if path == chart_path:
        return "."
    prefix = chart_path + "/"
    if path.startswith(prefix):
        return posixpath.normpath(path[len(prefix) :])
    return None
