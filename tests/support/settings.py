"""The settings most tests start from: one app, ``acme/shop``, with nothing else set."""

from __future__ import annotations

from ci_runner.config import Settings, load

APP_ENV = {
    "REPO": "acme/shop",
    "IMAGE": "r.example.com/acme/shop",
    "CHART_PATH": "c",
    "RELEASE": "shop",
}
"""The required settings, as environment variables."""


def app_settings(**env: str) -> Settings:
    """The app's settings with ``env`` (variables) on top, loaded as a run loads them."""
    return load(Settings, {}, {**APP_ENV, **env})
