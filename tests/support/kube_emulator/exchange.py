"""What every request of the emulator's HTTP front shares: the addressed resource (``Route``),
reading the body, recording the request, and writing the answer. The handler itself
(``server.py``) is this plus one module per family of requests: ``discovery.py``, ``reads.py``,
``writes.py`` and ``watches.py``."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

import yaml

from . import protobuf
from .controls import RequestRecord
from .filters import SELECTABLE, SelectorError, field_selector, label_selector
from .resources import Resource
from .store import ApiError, Obj

if TYPE_CHECKING:
    from .emulator import Emulator
    from .server import Server


@dataclass(frozen=True)
class Route:
    """What a request path addresses."""

    group: str = ""
    version: str = ""
    resource: Resource | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


class Exchange(BaseHTTPRequestHandler):
    """One request and its answer; ``server.Handler`` routes it to a family's methods."""

    server: Server
    req_path: str
    query: dict[str, str]
    body: bytes
    route: Route
    verb: str
    recorded: bool

    @property
    def emu(self) -> Emulator:
        """The emulator this server belongs to."""
        return self.server.emulator

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, status: int) -> None:
        if self.recorded:
            return
        self.recorded = True
        route = self.route
        self.emu.request_log.append(
            RequestRecord(
                method=self.command,
                path=self.req_path,
                query=dict(self.query),
                api_group=route.group,
                api_version=route.version,
                resource=route.resource.name if route.resource else None,
                subresource=route.subresource,
                namespace=route.namespace,
                name=route.name,
                verb=self.verb,
                status=status,
                user_agent=self.headers.get("User-Agent", ""),
                content_type=self.headers.get("Content-Type", ""),
                impersonating=self.headers.get("Impersonate-User", ""),
            )
        )

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self._record(code)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _found(self, doc: Obj | None) -> None:
        if doc is None:
            raise ApiError(404, "the server could not find the requested resource")
        self._send_json(200, doc)

    def _body_object(self) -> Obj:
        content_type = self.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if content_type == "application/vnd.kubernetes.protobuf":
            try:
                return protobuf.decode(self.body)
            except protobuf.ProtobufError as e:
                raise ApiError(415, str(e), "UnsupportedMediaType") from e
        if content_type in ("application/json", "application/yaml", "") or content_type.endswith(
            ("+json", "+yaml")
        ):
            try:
                obj = (
                    yaml.safe_load(self.body.decode())
                    if "yaml" in content_type
                    else (json.loads(self.body or b"{}"))
                )
            except (ValueError, yaml.YAMLError) as e:
                raise ApiError(400, f"the body of the request could not be decoded: {e}") from e
            if not isinstance(obj, dict | list):
                raise ApiError(400, "the body of the request must be an object")
            return obj  # type: ignore[return-value]
        raise ApiError(
            415,
            f"the emulator does not accept Content-Type {content_type!r}",
            "UnsupportedMediaType",
        )

    def _check_kind(self, res: Resource, obj: Obj) -> None:
        if obj.get("kind") and obj["kind"] != res.kind:
            raise ApiError(400, f"the body is a {obj['kind']}, not a {res.kind}")

    def _predicate(self) -> Any:
        try:
            labels = label_selector(self.query.get("labelSelector"))
            res = self.route.resource
            selectable = SELECTABLE.get((res.group, res.name)) if res else None
            fields = field_selector(self.query.get("fieldSelector"), selectable)
        except SelectorError as e:
            raise ApiError(400, str(e)) from e
        return lambda obj: labels(obj) and fields(obj)

    def _wants_table(self) -> bool:
        accept = self.headers.get("Accept", "")
        first = accept.split(",")[0]
        return "as=Table" in first

    def _dry_run(self) -> bool:
        """Whether the request asks for ``dryRun=All`` (validate and default, store nothing)."""
        return self.query.get("dryRun") == "All"


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    created = dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    seconds = int((dt.datetime.now(dt.UTC) - created).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def table(items: list[Obj], rv: str) -> Obj:
    """A meta.k8s.io/v1 Table with NAME and AGE, as kubectl get asks for."""
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "", "priority": 0},
        ],
        "rows": [
            {
                "cells": [obj["metadata"]["name"], age(obj["metadata"].get("creationTimestamp"))],
                "object": obj,
            }
            for obj in items
        ],
    }
