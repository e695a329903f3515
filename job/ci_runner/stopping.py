"""A stop the platform asked for (SIGTERM), kept where the run's long waits can see it.

The SIGTERM handler (cli.py) raises SystemExit, so that a blocking read in the main thread ends
at once and the run unwinds: helm cancelled, the Lease released. But Python runs a signal
handler between any two bytecodes, finalizers included (``__del__``, a generator's clean-up,
which the HTTP client's objects run all the time), and an exception raised there is printed as
"Exception ignored" and dropped: the run would go on, deaf to the one SIGTERM Kubernetes sends.
So the handler also records the signal here and sends it to a running helm itself (helm.py);
the build watch (at least every LOOK_SECONDS), the step before the deploy, the start of any
helm process, and a deploy that failed raise it again: a helm our SIGTERM stopped is not the
commit's failed attempt.
"""

from __future__ import annotations

_signal: int | None = None


def request(signum: int) -> None:
    """Remember that signal ``signum`` asked the run to stop."""
    global _signal
    _signal = signum


def check() -> None:
    """Exit as the signal asked (128 + its number) if one did; else nothing."""
    if _signal is not None:
        raise SystemExit(128 + _signal)
