"""``python -m ci_runner`` and the ``ci-runner`` console script: the SIGTERM handler first, then
the CLI, whose imports (the kubernetes client) take most of a second.

In a container the runner is PID 1, and the kernel drops a signal PID 1 has no handler for: a
SIGTERM during those imports was ignored, and the pod was killed 30 s later instead."""

from __future__ import annotations

import signal
from types import FrameType

from . import stopping


def _stop_early(signum: int, frame: FrameType | None) -> None:
    # Nothing is written before the CLI installs its own handler: stopping now is safe.
    stopping.request(signum)
    raise SystemExit(128 + signum)


def main() -> None:
    """Install the early SIGTERM handler, then run the CLI."""
    signal.signal(signal.SIGTERM, _stop_early)
    # Not at the top: this import is most of an idle run's time, and a SIGTERM during it must
    # find the handler above.
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
