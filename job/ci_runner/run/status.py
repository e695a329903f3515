"""``ci-runner status``: what the state ConfigMap says about a release, as a report."""

from __future__ import annotations

from typing import Any

from ..config import StateSettings
from ..kube import client as kube
from ..kube.state import from_configmap, read_configmap, status_report


def release_status(where: StateSettings) -> tuple[bool, dict[str, Any]]:
    """(whether the release has state at all, the report of ``status``)."""
    with kube.connect(where.verify_ssl, where.api_timeout) as api:
        configmap = read_configmap(api, where)
    return configmap is not None, status_report(configmap, where)


def release_history(where: StateSettings) -> list[dict[str, Any]]:
    """What ``ci-runner history`` shows: the recorded deploys, newest first."""
    with kube.connect(where.verify_ssl, where.api_timeout) as api:
        configmap = read_configmap(api, where)
    return [deployed.as_json() for deployed in from_configmap(configmap).history]
