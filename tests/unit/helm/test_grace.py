"""SIGTERM and helm: a running helm gets the signal at once and HELM_GRACE_SECONDS to cancel and
roll back, then SIGKILL; a finished one holds nothing up (the grace timer's thread would keep
the run alive); and no helm starts once a stop was asked for."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator

import pytest
from ci_runner import stopping
from ci_runner.helm import deploy as helm


def _grace_timers() -> list[threading.Timer]:
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer)]


@pytest.fixture(autouse=True)
def no_helm_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(stopping, "_signal", None)
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
    helm.stop_helm()
    assert _grace_timers() == []


def test_a_running_helm_gets_the_sigterm_itself() -> None:
    # Without the run's SystemExit cancelling pyhelm3's task: that exception can be lost.
    async def stopped_while_helm_runs() -> int:
        process = await helm._ExecNotShell.create_subprocess_shell("sleep 60")
        try:
            helm.stop_helm()
            return await asyncio.wait_for(process.wait(), 10)
        finally:
            if process.returncode is None:
                process.kill()

    assert asyncio.run(stopped_while_helm_runs()) == -signal.SIGTERM


def test_a_helm_that_outlasts_its_grace_is_killed() -> None:
    async def stopped_while_helm_ignores_it() -> int:
        # A shell that ignores SIGTERM, and its sleep with it: helm's group, killed together.
        stubborn = "sh -c 'trap \"\" TERM; echo ready; sleep 60'"
        process = await helm._ExecNotShell.create_subprocess_shell(
            stubborn, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            await process.stdout.readline()  # the trap is set
            helm.stop_helm()
            [timer] = _grace_timers()
            assert timer.interval == helm.HELM_GRACE_SECONDS
            timer.cancel()
            timer.function(*timer.args, **timer.kwargs)  # what it does when the grace is over
            return await asyncio.wait_for(process.wait(), 10)
        finally:
            if process.returncode is None:
                process.kill()

    assert asyncio.run(stopped_while_helm_ignores_it()) == -signal.SIGKILL


def test_no_helm_starts_once_a_stop_was_asked_for() -> None:
    stopping.request(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        asyncio.run(helm._ExecNotShell.create_subprocess_shell("true"))
    assert stopped.value.code == 128 + signal.SIGTERM
    assert helm._ExecNotShell.running == set()
