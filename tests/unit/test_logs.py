"""Secrets are masked in log lines, including ones learnt during the run and PEM lines."""

from __future__ import annotations

import logging

import pytest
from ci_runner import logs

from tests.support.appkeys import rsa_pem


def test_secrets_learnt_later_and_each_line_of_a_key_are_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = rsa_pem()
    logs.setup("text", ["fake-token-0123456789"], verbose=False)
    logs.learn(key)
    logs.learn("ghs_learnt_during_the_run_0123")
    line = key.splitlines()[3]
    log = logging.getLogger("ci_runner.test")
    log.warning("clone with %s", "ghs_learnt_during_the_run_0123")
    log.warning("a line of the key: %s; the token: fake-token-0123456789", line)
    log.warning("the whole key: %s", key)
    err = capsys.readouterr().err
    assert "ghs_learnt" not in err and "fake-token" not in err and line not in err
    assert "BEGIN RSA PRIVATE KEY" not in err
    assert err.count("***") == 4
    assert logs.mask(f"x {line} y", []) == "x *** y"
