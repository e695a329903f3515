"""``ci-runner status``: what the state ConfigMap says about a release, as a report, and
whether the release is still what the runner deployed (drift)."""

from __future__ import annotations

import json
import logging
from typing import Any

from ..config import StateSettings
from ..errors import ConfigError, KubernetesError
from ..kube import client as kube
from ..kube.state import from_configmap, read_configmap, status_report
from .plan import drift

log = logging.getLogger(__name__)

# helm status is asked with this timeout (it reads the release's Secrets: seconds at most).
HELM_STATUS_TIMEOUT = 60


def read_state(api: kube.Kube, where: StateSettings) -> kube.Obj | None:
    """The state ConfigMap; None when there is none. ConfigError when CICD_NS itself does not
    exist: a GET of an object in a missing namespace is a 404 like that of a missing object
    (``configmaps "x" not found``), so only then is the namespace asked about. An identity
    that may not read namespaces (403: the chart grants ``get`` on them only with its optional
    namespace ClusterRole) is told "no state", as before: no grant is added for this."""
    configmap = read_configmap(api, where)
    if configmap is None and api.namespace_exists(where.cicd_namespace) is False:
        raise ConfigError(
            [
                f"CICD_NS namespace {where.cicd_namespace!r} does not exist, so release "
                f"{where.release} has no state there: check CICD_NS (--cicd-namespace)"
            ]
        )
    return configmap


def release_status(where: StateSettings) -> tuple[bool, dict[str, Any]]:
    """(whether the release has state at all, the report of ``status``)."""
    with kube.connect(where.verify_ssl, where.api_timeout) as api:
        configmap = read_state(api, where)
    report = status_report(configmap, where)
    if configmap is not None:
        report["drift"] = release_drift(configmap, where)
    return configmap is not None, report


def release_drift(configmap: kube.Obj, where: StateSettings) -> str | None:
    """What ``helm status`` says of the release against the state's last deploy: the drift
    and its fix, None when there is none; a line saying why it was not checked otherwise."""
    state = from_configmap(configmap)
    namespace = (configmap.get("data") or {}).get("deployNamespace")
    if state.deployed_sha is None or not namespace:
        return None
    # Not at the top: pyhelm3 is not for an idle run (cli imports this module for every command).
    from ..helm.deploy import installed

    try:
        acting_as = where.deployer_in(namespace)  # the runner itself may read nothing there
        now = installed(where.release, namespace, where.verify_ssl, HELM_STATUS_TIMEOUT, acting_as)
    except (ConfigError, KubernetesError) as e:
        return f"not checked: {e}"
    names_sha = now is not None and state.deployed_sha in json.dumps(now.values)
    return drift(
        state,
        f"{namespace}/{where.release}",
        now.revision if now else None,
        now.status if now else None,
        names_sha,
    )


def release_history(where: StateSettings) -> list[dict[str, Any]]:
    """What ``ci-runner history`` shows: the recorded deploys, newest first."""
    with kube.connect(where.verify_ssl, where.api_timeout) as api:
        configmap = read_state(api, where)
    return [deployed.as_json() for deployed in from_configmap(configmap).history]
