"""Kubernetes Events on the state ConfigMap: what happened, where ``kubectl describe`` shows it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ..config import Settings
from ..errors import KubernetesError, shorten
from .client import EVENTS, Kube, Obj

log = logging.getLogger(__name__)


def event(settings: Settings, uid: str | None, reason: str, message: str, warning: bool) -> Obj:
    """A core/v1 Event about the state ConfigMap. ``kubectl describe`` finds Events by the
    object's uid, so it is set whenever the ConfigMap exists."""
    s = settings
    now = datetime.now(UTC)
    involved: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": s.state_configmap,
        "namespace": s.cicd_namespace,
    }
    if uid:
        involved["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{s.state_configmap}.", "namespace": s.cicd_namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": shorten(message, 1000),
        "type": "Warning" if warning else "Normal",
        "source": {"component": "ci-runner"},
        "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "count": 1,
    }


class Recorder:
    """Emits Events about the release's state ConfigMap (best effort)."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings

    def emit(self, uid: str | None, reason: str, message: str, warning: bool = False) -> None:
        """Record one Event; a failure is a warning, never a failed cycle."""
        body = event(self._settings, uid, reason, message, warning)
        try:
            self._kube.request(
                "POST", EVENTS.path(self._settings.cicd_namespace), "recording an Event", body=body
            )
        except KubernetesError as e:
            # An Event is a courtesy: the state and the exit code already tell the story.
            log.warning("could not record Event %s: %s", reason, e)
