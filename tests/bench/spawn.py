"""``python -I -S spawn.py REPORT ARGV...``: run ARGV, then write its wall time and rusage to
REPORT.

Why a launcher: Linux starts a child's peak RSS (``ru_maxrss``) at the peak of the memory it
replaced when it exec'd, and a spawned child execs from its parent's memory. Spawned from the
bench (an emulator, a fake, the kubernetes client: 50 MiB and more), every command would show at
least that. This launcher is a bare interpreter (no site, only built-in modules), so what a
child can inherit from it is a few MiB, below anything measured here.

Standard library only, no imports from the repository: it runs with ``-I -S``.
"""

import os
import sys
import time


def main() -> None:
    """Spawn ARGV with this environment and standard streams, wait, report, exit as it did."""
    report, argv = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(report, "w") as out:
        # ru_maxrss is in KiB on Linux.
        out.write(f"{wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss} {code}\n")
    sys.exit(0 if code == 0 else 1)


main()
