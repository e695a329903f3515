"""The emulator's answers outside the resource paths: version, discovery, OpenAPI, health."""

from __future__ import annotations

from . import resources
from .exchange import Exchange
from .store import ApiError

VERSION = {
    "major": "1",
    "minor": "35",
    "gitVersion": "v1.35.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class Discovery(Exchange):
    """GET /version, /api, /apis, /openapi/v3 and the health checks."""

    def _non_resource(self) -> None:
        path = self.req_path.rstrip("/")
        if self.command != "GET":
            raise ApiError(405, f"{self.command} is not supported on {path}")
        server_address = f"127.0.0.1:{self.server.port}"
        if path == "/version":
            self._send_json(200, VERSION)
        elif path == "/api":
            self._send_json(200, resources.api_versions(server_address))
        elif path == "/api/v1":
            self._send_json(200, resources.resource_list("", "v1"))
        elif path == "/apis":
            self._send_json(200, resources.api_group_list())
        elif path.startswith("/apis/") and path.count("/") == 2:
            doc = resources.api_group(path.split("/")[2])
            self._found(doc)
        elif path.startswith("/apis/") and path.count("/") == 3:
            _, _, group, version = path.split("/")
            self._found(resources.resource_list(group, version))
        elif path == "/openapi/v3":
            self._send_json(200, resources.openapi_v3_index())
        elif path.startswith("/openapi/v3/"):
            self._found(resources.openapi_v3_document(path.removeprefix("/openapi/v3/")))
        elif path in ("/healthz", "/readyz", "/livez"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
        else:
            raise ApiError(404, "the server could not find the requested resource")
