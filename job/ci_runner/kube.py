"""Connecting to the Kubernetes API, and turning its failures into our errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from . import __version__
from .errors import ConfigError, KubernetesError, shorten


def connect(verify_ssl: bool) -> client.ApiClient:
    """An ApiClient from the in-cluster config, else the kubeconfig (``KUBECONFIG`` honoured)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        try:
            config.load_kube_config(client_configuration=configuration)
        except (ConfigException, OSError) as e:
            raise ConfigError(
                [f"no Kubernetes configuration: not in a cluster and no usable kubeconfig ({e})"]
            ) from e
    configuration.verify_ssl = verify_ssl
    # No silent retries: a failed request ends this run with exit code 3, and the next
    # scheduled run is the retry. (urllib3 would otherwise repeat a timed-out GET.)
    configuration.retries = False
    if not verify_ssl:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    api = client.ApiClient(configuration)
    # Our own name in the API server's audit log, and how the tests tell our requests apart.
    api.user_agent = f"ci-runner/{__version__}"
    return api


def status_reason(e: ApiException) -> str:
    """The API's own message from an error answer, cut short."""
    try:
        body = json.loads(e.body or "{}")
    except (ValueError, TypeError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return shorten(str(message or e.reason or "no message"), 200)


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Turn client errors raised while ``doing`` into KubernetesError (exit code 3)."""
    try:
        yield
    except ApiException as e:
        raise KubernetesError(
            f"Kubernetes API answered {e.status} while {doing}: {status_reason(e)}", e.status
        ) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        problem = shorten(str(e), 200)
        raise KubernetesError(f"Kubernetes API unreachable while {doing}: {problem}") from e
