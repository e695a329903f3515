"""The Kubernetes API as plain dicts, through the kubernetes package's ``ApiClient``.

The package gives us kubeconfig and in-cluster loading, auth (tokens, client certificates, exec
plugins) and its urllib3 transport; we skip its generated API classes and models. Our manifests
are dicts already, and the generated classes are most of an idle run's start-up cost.

Every failure becomes one of the typed errors of ``errors.py`` (NotFound, Conflict, Gone, or
KubernetesError), with what we were doing in the message.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import config
from kubernetes.client.api_client import ApiClient
from kubernetes.client.configuration import Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse
from kubernetes.config.config_exception import ConfigException

from .. import __version__
from ..errors import ConfigError, Conflict, Gone, KubernetesError, NotFound, shorten

Obj = dict[str, Any]

# The labels of what the runner creates (build Jobs, the token Secret).
MANAGED_BY = {"app.kubernetes.io/managed-by": "ci-runner"}
RELEASE_LABEL = "ci-runner.io/release"

_TYPED = {404: NotFound, 409: Conflict, 410: Gone}
# Failures where the request never reached the server: a refused connection, or a pooled
# keep-alive connection the server (or a load balancer) closed while we were idle.
_NOT_SENT = (
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ProtocolError,
    http.client.RemoteDisconnected,
    ConnectionResetError,
)


@dataclass(frozen=True)
class Kind:
    """A namespaced resource type, enough to build its paths."""

    name: str
    """As people say it in messages: ConfigMap, Job, Lease."""
    api_version: str
    plural: str

    def path(self, namespace: str, name: str = "", sub: str = "") -> str:
        """The collection path, or an object's path (and a subresource's)."""
        root = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        path = f"{root}/namespaces/{namespace}/{self.plural}"
        return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


CONFIGMAPS = Kind("ConfigMap", "v1", "configmaps")
SECRETS = Kind("Secret", "v1", "secrets")
PODS = Kind("Pod", "v1", "pods")
EVENTS = Kind("Event", "v1", "events")
JOBS = Kind("Job", "batch/v1", "jobs")
CRONJOBS = Kind("CronJob", "batch/v1", "cronjobs")
NAMESPACES_PATH = "/api/v1/namespaces"
LEASES = Kind("Lease", "coordination.k8s.io/v1", "leases")


def connect(verify_ssl: bool | None, timeout: float, agent: str = "ci-runner") -> Kube:
    """A Kube from the in-cluster config, else the kubeconfig (``KUBECONFIG`` honoured);
    ``agent`` names us in the API server's audit log (``ci-runner-fleet`` for the fleet)."""
    configuration = Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        try:
            config.load_kube_config(client_configuration=configuration)
        except (ConfigException, OSError) as e:
            path = os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise ConfigError(
                [
                    f"no Kubernetes configuration: not in a cluster, and no usable kubeconfig at "
                    f"{path} ({shorten(str(e), 200)})"
                ]
            ) from e
    if verify_ssl is not None:  # unset: what the kubeconfig says (insecure-skip-tls-verify)
        configuration.verify_ssl = verify_ssl
    # No silent urllib3 retries: they would repeat a request the server may have acted on.
    # Kube retries only what never reached the server (see _NOT_SENT).
    configuration.retries = False
    if not configuration.verify_ssl:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    api = ApiClient(configuration)
    # Our own name in the API server's audit log, and how the tests tell our requests apart.
    api.user_agent = f"{agent}/{__version__}"
    return Kube(api, timeout)


CICD_NAMESPACE_LABELS = {"pod-security.kubernetes.io/enforce": "baseline"}
"""What a CICD namespace the runner creates is labelled: Pod Security's baseline level admits
the Kaniko build pod, which runs as root (restricted refuses it: runAsNonRoot), and refuses
privileged pods (kubernetes.io/docs/concepts/security/pod-security-standards)."""


def missing_namespace(setting: str, namespace: str) -> ConfigError:
    """The configuration error for a namespace that does not exist."""
    hint = (
        " (with the label pod-security.kubernetes.io/enforce=baseline: Kaniko runs as root)"
        if setting == "CICD_NS"
        else ""
    )
    return ConfigError(
        [
            f"{setting} namespace {namespace!r} does not exist: create it with "
            f"`kubectl create namespace {namespace}`{hint}"
        ]
    )


def namespace_problem(
    setting: str, namespace: str, exists: bool | None, create_namespace: bool
) -> ConfigError | None:
    """What a run would refuse about a namespace (``exists`` None: we may not tell): a missing
    CICD_NS or DEPLOY_NS that the runner may not create (CREATE_NAMESPACE=false)."""
    if exists is False and not create_namespace:
        return missing_namespace(setting, namespace)
    return None


def _message(status: int, body: bytes | str | None, reason: str | None) -> str:
    """The API's own message from an error answer, cut short."""
    try:
        parsed = json.loads(body or "{}")
    except (ValueError, TypeError):
        parsed = {}
    message = parsed.get("message") if isinstance(parsed, dict) else None
    return shorten(str(message or reason or "no message"), 200)


WRITES_WITH_BODY = {"POST", "PUT", "PATCH"}
"""Requests whose body the API server decodes: each is sent with fieldValidation=Strict."""


def error(status: int, doing: str, message: str) -> KubernetesError:
    """The typed error for an answer with ``status``."""
    kind = _TYPED.get(status, KubernetesError)
    if status == 401:
        # Credentials the API server refuses are configuration in every command (exit 2): the
        # next run cannot fare better. Still a KubernetesError, so each caller handles it.
        refused = kind(
            f"Kubernetes API refused the credentials (401) while {doing}: {message}; check the "
            "kubeconfig (KUBECONFIG) or the ServiceAccount's token",
            status,
        )
        refused.exit_code = 2
        return refused
    return kind(f"Kubernetes API answered {status} while {doing}: {message}", status)


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Turn transport failures raised while ``doing`` into KubernetesError (exit code 3)."""
    try:
        yield
    except ApiException as e:  # the client raises these for TLS failures (status 0)
        raise error(e.status or 0, doing, _message(e.status, e.body, e.reason)) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        problem = shorten(str(e), 200)
        raise KubernetesError(f"Kubernetes API unreachable while {doing}: {problem}") from e


class Kube:
    """Plain-dict requests to one API server, each bounded by ``timeout`` seconds."""

    def __init__(self, api: ApiClient, timeout: float) -> None:
        self.api = api
        self.timeout = timeout

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.close()

    # -- the verbs --------------------------------------------------------------------------------

    def read(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """The object, or None when it does not exist."""
        doing = f"reading {kind.name} {namespace}/{name}"
        try:
            return self.request("GET", kind.path(namespace, name), doing)
        except NotFound:
            return None

    def server_version(self) -> str | None:
        """The API server's ``gitVersion`` (``v1.37.2``); None when it does not say."""
        answer = self.request("GET", "/version", "reading the server version")
        version = answer.get("gitVersion") if isinstance(answer, dict) else None
        return version if isinstance(version, str) and version else None

    def namespace_exists(self, name: str) -> bool | None:
        """Whether namespace ``name`` exists; None when we may not read namespaces."""
        try:
            self.request("GET", f"{NAMESPACES_PATH}/{name}", f"reading namespace {name}")
        except NotFound:
            return False
        except KubernetesError as e:
            if e.status == 403:
                return None
            raise
        return True

    def ensure_namespace(
        self, name: str, setting: str, labels: dict[str, str] | None = None
    ) -> bool:
        """Create namespace ``name`` (with ``labels``) unless it exists; True when this call
        created it. An existing namespace is left as it is: its labels are its owner's.

        The runner creates the deploy namespace itself rather than passing helm
        ``--create-namespace``: helm 4 applies that namespace server-side (a PATCH, so it needs
        ``patch`` on namespaces, which would let the runner relabel any namespace's Pod
        Security level), and helm 3 POSTs it even when it exists. Found on kube-apiserver
        v1.37.2 with the chart's grants (get, create on namespaces)."""
        exists = self.namespace_exists(name)
        if exists or exists is None:  # None: not ours to read; helm names it if it is missing
            return False
        metadata: Obj = {"name": name, **({"labels": labels} if labels else {})}
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
        try:
            self.request("POST", NAMESPACES_PATH, f"creating namespace {name}", body=body)
        except Conflict:
            return False  # created meanwhile: just as good
        except KubernetesError as e:
            if e.status != 403:
                raise
            raise ConfigError(
                [
                    f"{setting} namespace {name!r} does not exist and this identity may not create "
                    f"it: create it (`kubectl create namespace {name}`) or grant create on "
                    "namespaces"
                ]
            ) from e
        return True

    def check_acting_as(self, user: str, setting: str) -> None:
        """ConfigError when this identity may not impersonate ``user``: one impersonated
        ``GET /version``, which every user may read, so only the impersonation can refuse it.
        helm 4 hides that 403 behind "kubernetes cluster unreachable: unknown" (its first
        request is discovery), which would otherwise read as an outage."""
        try:
            self.request("GET", "/version", f"acting as {user}", acting_as=user)
        except KubernetesError as e:
            if e.status != 403:
                raise
            raise ConfigError(
                [
                    f"helm may not act as {setting} {user}: {e} (grant this identity impersonate "
                    "on that ServiceAccount, as the chart's <release>-<app>-impersonate Role does, "
                    f"or unset {setting})"
                ]
            ) from e

    def create(self, kind: Kind, body: Obj) -> Obj:
        """Create ``body``; Conflict when it exists already."""
        meta = body["metadata"]
        doing = f"creating {kind.name} {meta['namespace']}/{meta['name']}"
        return self.request("POST", kind.path(meta["namespace"]), doing, body=body)

    def save(self, kind: Kind, body: Obj) -> Obj:
        """Create ``body``, or replace the object when ``body`` carries the resourceVersion
        that was read: Conflict when someone else wrote (or created) it since."""
        meta = body["metadata"]
        if not meta.get("resourceVersion"):
            return self.create(kind, body)
        doing = f"writing {kind.name} {meta['namespace']}/{meta['name']}"
        return self.request("PUT", kind.path(meta["namespace"], meta["name"]), doing, body=body)

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete the object and, in the background, what it owns (a Job's pods); gone already
        is fine."""
        doing = f"deleting {kind.name} {namespace}/{name}"
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        with suppress(NotFound):
            self.request("DELETE", kind.path(namespace, name), doing, body=body)

    def query(
        self, kind: Kind, namespace: str, *, label_selector: str = "", field_selector: str = ""
    ) -> list[Obj]:
        """The objects of ``kind`` in ``namespace`` that match the selectors."""
        query = [("labelSelector", label_selector), ("fieldSelector", field_selector)]
        query = [(key, value) for key, value in query if value]
        doing = f"listing {kind.name}s in {namespace} ({', '.join(v for _, v in query)})"
        answer = self.request("GET", kind.path(namespace), doing, query=query)
        return list(answer.get("items") or [])

    def log(self, namespace: str, pod: str, tail_lines: int) -> str:
        """The last ``tail_lines`` lines of a pod's log."""
        doing = f"reading the log of pod {namespace}/{pod}"
        response = self._send(
            "GET", PODS.path(namespace, pod, "log"), doing, [("tailLines", str(tail_lines))]
        )
        return self._body(response, doing).decode(errors="replace")

    def watch(
        self, kind: Kind, namespace: str, name: str, resource_version: str, seconds: int
    ) -> Iterator[tuple[str, Obj]]:
        """Events of one object from ``resource_version`` until the server ends the watch
        after ``seconds``. Gone when that version is too old: read again, then watch."""
        doing = f"watching {kind.name} {namespace}/{name}"
        query = [
            ("watch", "true"),
            ("fieldSelector", f"metadata.name={name}"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(seconds)),
        ]
        response = self._send("GET", kind.path(namespace), doing, query, seconds + self.timeout)
        if not 200 <= response.status <= 299:
            self._body(response, doing)  # raises the typed error
        try:
            with translated(doing):
                for line in _lines(response.response):
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":  # e.g. 410 Gone, as a Status object
                        message = _message(0, json.dumps(obj), obj.get("reason"))
                        raise error(int(obj.get("code") or 0), doing, message)
                    yield str(event.get("type")), obj
        finally:
            response.response.release_conn()

    # -- the transport ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        doing: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Obj | None = None,
        acting_as: str | None = None,
    ) -> Obj:
        """One JSON request; its JSON answer, or the typed error for an error answer.
        ``acting_as``: a user to impersonate for this request (``Impersonate-User``; the
        kubernetes client's Configuration has no field for it)."""
        query = list(query or [])
        if method in WRITES_WITH_BODY:
            # Without it the API server drops a field it does not know (a typo in BUILD_POD)
            # and only warns (client-go prints that warning; this client does not).
            query.append(("fieldValidation", "Strict"))
        response = self._send(method, path, doing, query, body=body, acting_as=acting_as)
        answer = json.loads(self._body(response, doing) or b"{}")
        if not isinstance(answer, dict):
            raise KubernetesError(f"Kubernetes API answered something unusable while {doing}")
        return answer

    def _send(
        self,
        method: str,
        path: str,
        doing: str,
        query: list[tuple[str, str]],
        timeout: float | None = None,
        body: Obj | None = None,
        acting_as: str | None = None,
    ) -> RESTResponse:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if acting_as:
            headers["Impersonate-User"] = acting_as
        request = self.api.param_serialize(
            method,
            path,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        seconds = timeout or self.timeout
        with translated(doing):
            try:
                response: RESTResponse = self.api.call_api(*request, _request_timeout=seconds)
                return response
            except _NOT_SENT:
                # Only a read is repeated, and only once: a write the server may have acted on
                # is never sent twice.
                if method != "GET":
                    raise
            response = self.api.call_api(*request, _request_timeout=seconds)
            return response

    def _body(self, response: RESTResponse, doing: str) -> bytes:
        """The whole answer; the typed error when its status is not 2xx."""
        with translated(doing):
            data: bytes = response.read() or b""
        if not 200 <= response.status <= 299:
            raise error(response.status, doing, _message(response.status, data, response.reason))
        return data


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The non-empty lines of a chunked watch answer as they arrive."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=True):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from (line for line in lines if line.strip())
    if pending.strip():
        yield pending
