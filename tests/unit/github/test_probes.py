"""GitHub's lines of ``ci-runner check``: the rate limit left, and what to do about it."""

from __future__ import annotations

import time

from ci_runner.github.answers import RateLimit
from ci_runner.github.probes import rate_limit_line

from tests.support.settings import app_settings_with

settings = app_settings_with


def test_rate_limit_line() -> None:
    soon = int(time.time()) + 600
    token = settings(git_token="t0ken-value")
    assert rate_limit_line(token, RateLimit(5000, 4990, soon)).ok
    exhausted = rate_limit_line(settings(), RateLimit(60, 0, soon))
    assert (exhausted.ok, exhausted.exit_code) == (False, 3)
    assert "set GIT_TOKEN" in exhausted.message
    anonymous = rate_limit_line(settings(), RateLimit(60, 59, soon))
    assert anonymous.ok and "set GIT_TOKEN" in anonymous.message
    assert "does not rate limit" in rate_limit_line(token, None).message
