"""The Emulator: an in-memory Kubernetes API server on 127.0.0.1 for tests."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import yaml

from .authz import service_account_token
from .controllers import Controllers
from .controls import Faults, JobControls, RequestLog, RequestRecord
from .filters import label_selector
from .resources import Resource, find
from .server import Server
from .store import Obj, Store

Records = list[RequestRecord]


class Emulator:
    """A stateful, in-memory Kubernetes API that real kubectl, helm and client libraries accept.

    Seeding and assertion helpers (``get``, ``list``, ``put``, ``create_namespace``) act on the
    store directly: they send no HTTP and do not appear in ``requests``.
    """

    def __init__(self) -> None:
        self.store = Store()
        self._controllers = Controllers(self.store)
        self._controllers.install()
        self.jobs = JobControls(self._controllers.jobs)
        """How Jobs run: ``jobs.behave(...)`` and ``jobs.release(...)``."""
        self.faults = Faults()
        """Injected failures: ``faults.add(method, path_regex, status, times, body)``."""
        self.request_log = RequestLog()
        self.stopping = threading.Event()
        self._add_node()
        self._server: Server | None = None

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Serve HTTP/1.1 on a free port of 127.0.0.1 in background threads."""
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        self._server = Server(self)
        self._server.start()

    def stop(self) -> None:
        """Stop serving: end watches and held requests, close every connection."""
        self.stopping.set()
        self.store.close()
        if self._server is not None:
            self._server.wait_streams(timeout=5)
            self._server.stop()
        self._server = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return self._server.url

    def write_kubeconfig(
        self,
        path: str | os.PathLike[str],
        namespace: str = "default",
        service_account: tuple[str, str] | None = None,
    ) -> Path:
        """Write a kubeconfig (mode 0600) whose current context points at this emulator: as the
        all-allowed admin, or as ``service_account`` (namespace, name), whose requests RBAC
        decides (see authz.py)."""
        user: dict[str, str] = {"token": "emulator-token"}
        if service_account is not None:
            # client-go (kubectl, helm) sends a kubeconfig's token only over TLS, but its
            # impersonation always; the kubernetes Python client sends the token anyway.
            namespace, name = service_account
            user = {"token": service_account_token(namespace, name),
                    "as": f"system:serviceaccount:{namespace}:{name}"}  # fmt: skip
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": user}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
            "preferences": {},
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        target.chmod(0o600)
        return target

    # ---- objects -------------------------------------------------------------------------------

    def create_namespace(self, name: str) -> Obj:
        """Create a namespace (or return the existing one)."""
        existing = self.get("v1", "namespaces", None, name)
        if existing is not None:
            return existing
        return self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def get(
        self, api_version: str, kind_or_resource: str, namespace: str | None, name: str
    ) -> Obj | None:
        """One object, or None."""
        return self.store.get(self._resource(api_version, kind_or_resource), namespace or "", name)

    def list(
        self,
        api_version: str,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        """Objects of a resource, in one namespace or all, optionally by label selector."""
        items, _ = self.store.list(
            self._resource(api_version, resource), namespace, _labels(label_selector)
        )
        return items

    def put(self, obj: Obj) -> Obj:
        """Create or replace an object as the server would (uid, resourceVersion, defaults,
        controllers); a ``status`` given for a kind with a status subresource is kept."""
        res = self._resource(obj.get("apiVersion", ""), obj.get("kind", ""))
        return self.store.seed(res, obj)

    def delete(
        self, api_version: str, kind_or_resource: str, namespace: str | None, name: str
    ) -> Obj:
        """Delete an object (background cascade) and return it; KeyError when absent."""
        res = self._resource(api_version, kind_or_resource)
        if self.store.get(res, namespace or "", name) is None:
            raise KeyError(f"{kind_or_resource} {namespace}/{name} not found")
        return self.store.delete(res, namespace, name, {"propagationPolicy": "Background"})

    def pod_log(self, namespace: str, pod: str) -> str:
        """The log a Pod serves (the matching Job rule's ``log``)."""
        with self.store.cond:
            return self.store.logs.get((namespace, pod), "")

    # ---- request log ---------------------------------------------------------------------------

    @property
    def requests(self) -> Records:
        """Every request answered so far (a snapshot)."""
        return self.request_log.snapshot()

    def clear_requests(self) -> None:
        """Forget the requests logged so far."""
        self.request_log.clear()

    # ---- helpers -------------------------------------------------------------------------------

    def _add_node(self) -> None:
        """The one Ready node every Pod pretends to run on."""
        self.put(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": "emulator-node",
                    "labels": {
                        "kubernetes.io/hostname": "emulator-node",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
                "status": {
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                    "nodeInfo": {
                        "kubeletVersion": "v1.35.0",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                    },
                },
            }
        )

    @staticmethod
    def _resource(api_version: str, kind_or_resource: str) -> Resource:
        res = find(api_version, kind_or_resource)
        if res is None:
            raise KeyError(f"the emulator does not serve {api_version} {kind_or_resource}")
        return res


def _labels(selector: str | None) -> Any:
    return label_selector(selector) if selector else None
