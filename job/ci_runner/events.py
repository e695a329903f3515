"""Kubernetes Events on the state ConfigMap: what happened, where ``kubectl describe`` shows it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from kubernetes import client

from . import kube
from .errors import KubernetesError, shorten
from .settings import Settings

log = logging.getLogger(__name__)


class Recorder:
    """Emits core/v1 Events about the release's state ConfigMap (best effort)."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self._core = client.CoreV1Api(api)
        self._settings = settings

    def emit(self, reason: str, message: str, warning: bool = False) -> None:
        s = self._settings
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                generate_name=f"{s.state_configmap}.", namespace=s.cicd_namespace
            ),
            involved_object=client.V1ObjectReference(
                api_version="v1",
                kind="ConfigMap",
                name=s.state_configmap,
                namespace=s.cicd_namespace,
            ),
            reason=reason,
            message=shorten(message, 1000),
            type="Warning" if warning else "Normal",
            source=client.V1EventSource(component="ci-runner"),
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        try:
            with kube.translated("recording an Event"):
                self._core.create_namespaced_event(
                    s.cicd_namespace, body, _request_timeout=s.api_timeout
                )
        except KubernetesError as e:
            # An Event is a courtesy: the state and the exit code already tell the story.
            log.warning("could not record Event %s: %s", reason, e)
