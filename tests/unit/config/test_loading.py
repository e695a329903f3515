"""Loading the settings: a typo'd variable is named, not silently ignored."""

from __future__ import annotations

import pytest
from ci_runner.config import Settings, misspelt

from tests.support.settings import APP_ENV


@pytest.mark.parametrize(
    ("variable", "setting"),
    [
        ("IMAGES", "IMAGE"),
        ("REGISTRY_SECERT", "REGISTRY_SECRET"),
        ("MAX_RETRY", "MAX_RETRIES"),
        ("BRANCHE", "BRANCH"),
        ("HELM_TIMOUT", "HELM_TIMEOUT"),
    ],
)
def test_a_variable_two_edits_from_an_unset_setting_is_named(variable: str, setting: str) -> None:
    environ = {k: v for k, v in APP_ENV.items() if k != setting}
    assert misspelt(Settings, {**environ, variable: "x"}) == [(variable, setting)]


def test_no_warning_for_the_settings_themselves_a_set_neighbour_or_a_usual_environment() -> None:
    usual = {
        "PATH": "/bin",
        "HOME": "/root",
        "HOSTNAME": "x",
        "LANG": "C",
        "TERM": "xterm",
        "PWD": "/",
        "SHELL": "/bin/sh",
        "USER": "root",
        "KUBECONFIG": "k",
        "TMPDIR": "/t",
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "KUBERNETES_PORT": "tcp://10.0.0.1:443",
        "HELM_CACHE_HOME": "/c",
        "PYTHONPATH": "/p",
        "LOG_LEVEL": "debug",
    }
    assert misspelt(Settings, {**APP_ENV, **usual}) == []
    # IMAGES next to a set IMAGE: both meant, nothing to say
    assert misspelt(Settings, {**APP_ENV, "IMAGES": "x"} | {"IMAGE": "y"}) == []
