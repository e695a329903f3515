"""Secrets are masked in log lines, including ones learnt during the run and PEM lines."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, quote_plus

import pytest
from ci_runner import logs
from ci_runner.parsing import MIN_SECRET

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


# -- issue 17: every form a credential can take in text ---------------------------------------

PASSWORD = "reg/pa+ss:w0rd?&"  # a registry password with what URL- and base64-encoding change


@pytest.mark.parametrize("prefix", ["", "u", "us", "user:", "x-access-token:"])
def test_a_credential_is_masked_inside_any_base64(prefix: str) -> None:
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(f"{prefix}{PASSWORD}-and-more".encode()).decode()
        masked = logs.mask(f"Authorization: Basic {encoded}", [PASSWORD])
        assert "***" in masked
        # What is left shows a few bits at either edge of the secret, never the secret.
        shown = masked.removeprefix("Authorization: Basic ").split("***")
        assert sum(map(len, shown)) <= len(encoded) - len(PASSWORD)


def test_a_credential_is_masked_url_encoded_json_escaped_and_in_a_docker_config() -> None:
    auth = base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
    config = json.dumps({"auths": {"r.example.com": {"auth": auth, "password": PASSWORD}}})
    text = (
        f"push https://robot:{quote(PASSWORD, safe='')}@r.example.com/v2/ "
        f"form password={quote_plus(PASSWORD)} config {config}"
    )
    masked = logs.mask(text, [PASSWORD])
    for form in (PASSWORD, quote(PASSWORD, safe=""), quote_plus(PASSWORD), auth):
        assert form not in masked
    assert "r.example.com" in masked and "robot:" in masked


def test_settings_and_logs_agree_on_the_shortest_credential() -> None:
    assert MIN_SECRET == logs.MIN_SECRET == 8
