"""Timing whole processes: wall time, CPU time and peak RSS of one child, and their summaries.

Each command runs under ``spawn.py``, which waits for it with ``os.wait4``: that gives the
child's own resource usage, including every descendant it waited for (helm, for the runner):
CPU is their sum, ``ru_maxrss`` the largest single process among them.
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SPAWN = Path(__file__).resolve().parent / "spawn.py"


@dataclass(frozen=True)
class Sample:
    """One finished process."""

    wall: float
    """Seconds from spawn to exit."""
    cpu: float
    """User plus system CPU seconds of the process and the children it waited for."""
    rss_mib: float
    """Peak resident set size of the largest of those processes (at least the launcher's
    own few MiB, see ``spawn.py``)."""


class Failed(Exception):
    """A measured command did not exit 0: the bench stops, since its figures would lie."""


def run(
    argv: Sequence[str], env: Mapping[str, str], log: Path, stdin: bytes | None = None
) -> Sample:
    """Run ``argv`` to its end (output appended to ``log``) and measure it; Failed unless 0."""
    report = log.with_name("spawn-report.txt")
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(
            [sys.executable, "-I", "-S", str(SPAWN), str(report), *argv],
            env=dict(env),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise Failed(f"{shlex.join(argv)} failed; the end of its output:\n{tail}")
    wall, cpu, kib, _ = report.read_text().split()
    return Sample(float(wall), float(cpu), int(kib) / 1024)


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of one figure over the rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (at least one)."""
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Summary:
    """One command over all rounds."""

    name: str
    wall: Spread
    cpu: Spread
    rss_mib: Spread
    rounds: int

    @classmethod
    def of(cls, name: str, samples: Sequence[Sample]) -> Summary:
        """Summarise the samples of the command called ``name``."""
        return cls(
            name,
            Spread.of([s.wall for s in samples]),
            Spread.of([s.cpu for s in samples]),
            Spread.of([s.rss_mib for s in samples]),
            len(samples),
        )
