"""SIGTERM's grace for helm: a helm still running gets HELM_GRACE_SECONDS, then SIGKILL; one
that has finished holds nothing up (the grace timer's thread would keep the run alive)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator

import pytest
from ci_runner import helm


def _grace_timers() -> list[threading.Timer]:
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer)]


@pytest.fixture(autouse=True)
def no_helm_processes() -> Iterator[None]:
    helm._ExecNotShell.running.clear()
    yield
    for timer in _grace_timers():
        timer.cancel()
    helm._ExecNotShell.running.clear()


def test_a_finished_helm_starts_no_grace_timer() -> None:
    async def run_to_the_end() -> None:
        process = await helm._ExecNotShell.create_subprocess_shell("true")
        await process.wait()

    asyncio.run(run_to_the_end())
    helm.kill_helm_after_grace()
    assert _grace_timers() == []


def test_a_running_helm_gets_its_grace_then_is_killed() -> None:
    async def terminated_while_helm_runs() -> int:
        process = await helm._ExecNotShell.create_subprocess_shell("sleep 60")
        try:
            helm.kill_helm_after_grace()
            [timer] = _grace_timers()
            assert timer.interval == helm.HELM_GRACE_SECONDS
            timer.cancel()
            timer.function(*timer.args, **timer.kwargs)  # what it does when the grace is over
            return await asyncio.wait_for(process.wait(), 10)
        finally:
            if process.returncode is None:
                process.kill()

    assert asyncio.run(terminated_while_helm_runs()) == -signal.SIGKILL
