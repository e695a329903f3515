"""The installation token as a credential source: renewed at the moment of use when less than
RENEW_BEFORE is left, kept, and masked. A clock and a GitHub stand-in make it a plain test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ci_runner import logs
from ci_runner.errors import GitHubError
from ci_runner.kube.token_secret import RENEW_BEFORE
from ci_runner.run.auth import InstallationToken

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class World:
    """A clock a test moves, and a GitHub that makes tokens living ``lifetime``."""

    def __init__(self, lifetime: timedelta = HOUR) -> None:
        self.now = START
        self.lifetime = lifetime
        self.minted: list[tuple[str, datetime]] = []
        self.kept: list[tuple[str, datetime]] = []

    def mint(self, now: datetime) -> tuple[str, datetime]:
        assert now == self.now  # made at the time the source was asked
        token = f"ghs_minted{len(self.minted)}xyz"
        self.minted.append((token, now + self.lifetime))
        return self.minted[-1]

    def keep(self, token: str, expires: datetime) -> None:
        self.kept.append((token, expires))

    def source(
        self, token: str | None = None, expires: datetime | None = None
    ) -> InstallationToken:
        return InstallationToken(self.mint, self.keep, "App 1", token, expires, lambda: self.now)


def test_a_token_is_used_until_the_margin_then_renewed_and_kept() -> None:
    world = World()
    source = world.source()
    first = source()
    assert world.minted == [(first, START + HOUR)] and world.kept == world.minted
    world.now = START + HOUR - RENEW_BEFORE - timedelta(seconds=1)  # a long build later
    assert source() == first and len(world.minted) == 1
    world.now += timedelta(seconds=1)  # exactly RENEW_BEFORE left: renewed
    second = source()
    assert second != first and world.kept[-1] == (second, world.now + HOUR)
    assert source() == second and len(world.minted) == 2


def test_a_kept_token_good_for_longer_is_used_without_asking_github() -> None:
    world = World()
    source = world.source("ghs_keptkeptkept", START + timedelta(minutes=30))
    assert source() == "ghs_keptkeptkept" and world.minted == []
    world.now = START + timedelta(minutes=21)
    assert source() != "ghs_keptkeptkept" and len(world.minted) == 1


def test_tokens_shorter_lived_than_the_margin_are_renewed_once_per_use() -> None:
    world = World(lifetime=timedelta(seconds=30))
    source = world.source()
    assert len({source(), source(), source()}) == 3  # never an expired one, never a loop


def test_a_dry_run_keeps_nothing() -> None:
    world = World()
    source = InstallationToken(world.mint, None, "App 1", now=lambda: world.now)
    source()
    assert world.kept == [] and len(world.minted) == 1


def test_every_token_it_holds_is_masked() -> None:
    world = World()
    source = world.source("ghs_keptbeforethisrun", START + timedelta(minutes=5))
    renewed = source()
    said = logs.mask(f"kept ghs_keptbeforethisrun, renewed {renewed}", [])
    assert "ghs_" not in said


def test_a_renewal_github_refuses_is_the_callers_error() -> None:
    def refuse(now: datetime) -> tuple[str, datetime]:
        raise GitHubError("GitHub refused the App's JWT")

    source = InstallationToken(refuse, None, "App 1", "ghs_oldoldoldold", START, lambda: START)
    with pytest.raises(GitHubError, match="refused"):
        source()


def test_only_a_kept_token_github_refuses_is_replaced() -> None:
    world = World()
    source = world.source("ghs_keptkeptkept", START + timedelta(minutes=30))
    assert source() == "ghs_keptkeptkept"
    assert source.refused("ghs_keptkeptkept")  # revoked early: worth one new token
    fresh = source()
    assert fresh != "ghs_keptkeptkept" and world.kept == world.minted
    assert not source.refused(fresh)  # made now and refused: no loop of new tokens
    assert source() == fresh and len(world.minted) == 1
