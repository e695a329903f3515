"""The settings most tests start from: one app, ``acme/shop``, with nothing else set."""

from __future__ import annotations

from dataclasses import replace

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


def app_settings_with(**fields: object) -> Settings:
    """The app's settings with dataclass fields (not variables) replaced: a value as the code
    sees it, past parsing."""
    return replace(app_settings(), **fields)  # type: ignore[arg-type]
