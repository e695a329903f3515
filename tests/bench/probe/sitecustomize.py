"""The bench's probe: Python imports ``sitecustomize`` at start-up, and the bench puts this
directory first on the ``PYTHONPATH`` of the deploys it measures.

When ``CI_RUNNER_BENCH_RUSAGE`` names a file, the process writes its own peak RSS (KiB) there
at exit: the runner without its helm, which ``os.wait4`` cannot tell apart (it reports the
largest of the two). Without the variable this module does nothing.
"""

import os

_PATH = os.environ.get("CI_RUNNER_BENCH_RUSAGE")

if _PATH:
    import atexit
    import resource

    def _record(path: str) -> None:
        with open(path, "w") as out:
            out.write(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\n")

    atexit.register(_record, _PATH)
