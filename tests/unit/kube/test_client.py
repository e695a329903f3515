"""The plain-dict Kubernetes client over a real HTTP server on 127.0.0.1: typed errors, and one
retry of a read whose connection died, never of a write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest
from ci_runner.errors import Conflict, KubernetesError, NotFound
from ci_runner.kube.client import CONFIGMAPS, Kube
from kubernetes.client.api_client import ApiClient
from kubernetes.client.configuration import Configuration

from tests.support.httpserver import LocalHTTPServer

CM: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "s", "namespace": "ns"},
}


class Handler(BaseHTTPRequestHandler):
    """Answers from ``script``: a status for each request in turn; "drop" closes the
    connection without answering, as a server (or a load balancer) ending a keep-alive does."""

    protocol_version = "HTTP/1.1"
    script: ClassVar[list[int | str]] = []
    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        Handler.seen.append(self.command)
        step = Handler.script.pop(0) if Handler.script else 200
        if step == "drop":
            self.close_connection = True
            self.connection.close()
            return
        status = int(step)
        body = json.dumps(CM if status < 400 else {"kind": "Status", "message": f"said {status}"})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def kube() -> Iterator[Kube]:
    Handler.script, Handler.seen = [], []
    server = LocalHTTPServer(Handler, "kube-test")
    server.start()
    configuration = Configuration(host=server.url)
    configuration.retries = False
    try:
        with Kube(ApiClient(configuration), 5) as api:
            yield api
    finally:
        server.stop()


def test_a_read_on_a_dropped_connection_is_sent_once_more(kube: Kube) -> None:
    Handler.script = ["drop"]
    assert kube.read(CONFIGMAPS, "ns", "s") == CM
    assert Handler.seen == ["GET", "GET"]


def test_a_write_is_never_sent_twice(kube: Kube) -> None:
    Handler.script = ["drop"]
    with pytest.raises(KubernetesError, match="unreachable while creating ConfigMap ns/s"):
        kube.create(CONFIGMAPS, CM)
    assert Handler.seen == ["POST"]


def test_answers_become_typed_errors(kube: Kube) -> None:
    Handler.script = [404, 409, 500]
    assert kube.read(CONFIGMAPS, "ns", "s") is None
    with pytest.raises(Conflict, match="409 while writing ConfigMap ns/s: said 409"):
        kube.save(CONFIGMAPS, {**CM, "metadata": {**CM["metadata"], "resourceVersion": "1"}})
    with pytest.raises(KubernetesError, match="500") as error:
        kube.read(CONFIGMAPS, "ns", "s")
    assert not isinstance(error.value, NotFound)


def test_credentials_the_api_server_refuses_are_configuration_in_every_command() -> None:
    from ci_runner.kube.client import error as api_error

    refused = api_error(401, "reading configmaps cicd/x", "Unauthorized")
    assert isinstance(refused, KubernetesError) and refused.exit_code == 2
    assert "check the kubeconfig" in str(refused)
    assert api_error(503, "reading configmaps cicd/x", "unavailable").exit_code == 3
