"""A stop the platform asked for (SIGTERM), kept where the run's long waits can see it.

The SIGTERM handler (cli.py) raises SystemExit, so that a blocking read in the main thread ends
at once and the run unwinds: helm cancelled, the Lease released. But Python runs a signal
handler between any two bytecodes, finalizers included (``__del__``, a generator's clean-up,
which the HTTP client's objects run all the time), and an exception raised there is printed as
"Exception ignored" and dropped: the run would go on, deaf to the one SIGTERM Kubernetes sends.
So the handler also records the signal here, and cancels at once what is registered here: the
one registry of what to cancel on SIGTERM (a running helm: ``helm/deploy.py`` registers
``stop_helm`` while it runs helm). The build watch (at least every LOOK_SECONDS), the step before
the deploy, the start of any helm process, and a deploy that failed raise the signal again: a
helm our SIGTERM stopped is not the commit's failed attempt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

_signal: int | None = None
_cancellers: list[Callable[[], None]] = []
"""What to cancel on a stop: one entry per long-running thing started, while it runs."""


def request(signum: int) -> None:
    """Remember that signal ``signum`` asked the run to stop, and cancel what is registered."""
    global _signal
    _signal = signum
    for cancel in list(_cancellers):
        cancel()


@contextlib.contextmanager
def cancelling(cancel: Callable[[], None]) -> Iterator[None]:
    """Within this block a stop calls ``cancel`` (from the signal handler: it must not block)."""
    _cancellers.append(cancel)
    try:
        yield
    finally:
        _cancellers.remove(cancel)


def check() -> None:
    """Exit as the signal asked (128 + its number) if one did; else nothing."""
    if _signal is not None:
        raise SystemExit(128 + _signal)
