"""Which pending release the runner may recover: only one that is truly stuck."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ci_runner.helm.deploy import RECOVERY_MARGIN_SECONDS, _truly_stuck


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def test_a_dead_runs_helm_is_recovered_at_once() -> None:
    assert _truly_stuck(since=ago(5), orphaned_helm=ago(6), helm_timeout=300)


def test_a_young_pending_release_of_someone_elses_helm_is_left_alone() -> None:
    assert not _truly_stuck(since=ago(5), orphaned_helm=None, helm_timeout=300)
    # pending since before the dead run's helm started: not that helm's
    assert not _truly_stuck(since=ago(60), orphaned_helm=ago(30), helm_timeout=300)


def test_any_pending_release_older_than_helm_timeout_and_the_margin_is_stuck() -> None:
    old = ago(300 + RECOVERY_MARGIN_SECONDS + 1)
    assert _truly_stuck(since=old, orphaned_helm=None, helm_timeout=300)
    assert not _truly_stuck(since=ago(300), orphaned_helm=None, helm_timeout=300)
