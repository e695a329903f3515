"""HTTP/1.1 front of the emulator: routing, request decoding, responses and chunked watches."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from tests.support.httpserver import LocalHTTPServer

from . import authz, protobuf, resources, reviews
from .controls import RequestRecord
from .filters import SELECTABLE, SelectorError, field_selector, label_selector
from .patches import PatchError, json_patch, merge_patch, prune_applied, strategic_merge_patch
from .resources import Resource
from .store import ApiError, Obj, not_found

if TYPE_CHECKING:
    from .emulator import Emulator

HANG_LIMIT_SECONDS = 60.0
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
NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class Route:
    """What a request path addresses."""

    group: str = ""
    version: str = ""
    resource: Resource | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


class Server(LocalHTTPServer):
    """The emulator's HTTP server; it also counts the long-lived answers (watches, hangs)."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(Handler, "kube-emulator")
        self.emulator = emulator
        self._streams = threading.Condition()
        self._stream_count = 0

    @contextlib.contextmanager
    def stream(self) -> Iterator[None]:
        """Count a long-lived answer (a watch or a held request) while it runs."""
        with self._streams:
            self._stream_count += 1
        try:
            yield
        finally:
            with self._streams:
                self._stream_count -= 1
                self._streams.notify_all()

    def wait_streams(self, timeout: float) -> None:
        """Wait until every watch and held request has ended (after the store is closed)."""
        with self._streams:
            self._streams.wait_for(lambda: self._stream_count == 0, timeout)


class Handler(BaseHTTPRequestHandler):
    """One connection; each request is routed to discovery, objects or a watch."""

    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers, 40 ms per answer. The real API server is Go, whose TCP
    # connections have no delay unless asked (net.TCPConn.SetNoDelay: "The default is true").
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator keeps its own request log."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # ---- plumbing ------------------------------------------------------------------------------

    @property
    def emu(self) -> Emulator:
        """The emulator this server belongs to."""
        return self.server.emulator

    def _handle(self) -> None:
        url = urlsplit(self.path)
        self.req_path = url.path
        self.query = dict(parse_qsl(url.query, keep_blank_values=True))
        self.body = self._read_body()
        self.route = Route()
        self.verb = self.command.lower()
        self.recorded = False
        try:
            review = reviews.is_review(self.command, self.req_path)  # answered by reviews.py
            if not review:
                self.route, self.verb = self._route()
            fault = self.emu.faults.take(self.command, self.req_path)
            if fault is not None:
                if fault.status == "hang":
                    self._record(0)
                    with self.server.stream():
                        self.emu.stopping.wait(HANG_LIMIT_SECONDS)
                    self.close_connection = True
                    return
                error = ApiError(int(fault.status), f"injected fault: HTTP {fault.status}")
                self._send_json(error.code, {**error.status(), **(fault.body or {})})
                return
            if review:
                reviews.serve(self)
                return
            authz.authorize(self)  # RBAC for ServiceAccount tokens; anyone else may do anything
            self._dispatch()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:
            if self.recorded:  # the answer has started (a watch): all we can do is hang up
                self.close_connection = True
                return
            if not isinstance(e, ApiError):  # a bug in the emulator: say so rather than hang
                traceback.print_exc()
                e = ApiError(500, f"emulator error: {e!r}")
            self._send_json(e.code, e.status())

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

    # ---- routing -------------------------------------------------------------------------------

    def _route(self) -> tuple[Route, str]:
        parts = [unquote(p) for p in self.req_path.strip("/").split("/") if p]
        method = self.command.lower()
        if parts[:2] == ["api", "v1"] and len(parts) > 2:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return Route(), method
        if rest[0] == "watch":  # the deprecated /watch/ prefix
            rest = rest[1:]
            self.query["watch"] = "true"
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in NAMESPACE_SUBRESOURCES:
            namespace, rest = rest[1], rest[2:]
        res = resources.lookup(group, version, rest[0])
        if res is None or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        route = Route(group, version, res, namespace, name, sub)
        if (namespace is not None and not res.namespaced) or (
            sub is not None and sub not in res.subresources
        ):
            raise ApiError(404, "the server could not find the requested resource")
        if name is None:
            verbs = {"get": "list", "post": "create", "delete": "deletecollection"}
            verb = verbs.get(method, method)
            if method == "get" and self.query.get("watch") in ("true", "1"):
                verb = "watch"
        else:
            verbs = {"get": "get", "put": "update", "patch": "patch", "delete": "delete"}
            verb = verbs.get(method, method)
        return route, verb

    def _dispatch(self) -> None:
        route = self.route
        if route.resource is None:
            self._non_resource()
            return
        res = route.resource
        handlers = {
            "list": self._list,
            "watch": self._watch,
            "create": self._create,
            "deletecollection": self._delete_collection,
            "get": self._get,
            "update": self._update,
            "patch": self._patch,
            "delete": self._delete,
        }
        handler = handlers.get(self.verb)
        if handler is None or (
            route.name is None
            and res.namespaced
            and self.verb == "create"
            and route.namespace is None
        ):
            raise ApiError(405, f"{self.command} is not supported here")
        handler(res)

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

    def _found(self, doc: Obj | None) -> None:
        if doc is None:
            raise ApiError(404, "the server could not find the requested resource")
        self._send_json(200, doc)

    # ---- bodies --------------------------------------------------------------------------------

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

    # ---- verbs ---------------------------------------------------------------------------------

    def _predicate(self) -> Any:
        try:
            labels = label_selector(self.query.get("labelSelector"))
            res = self.route.resource
            selectable = SELECTABLE.get((res.group, res.name)) if res else None
            fields = field_selector(self.query.get("fieldSelector"), selectable)
        except SelectorError as e:
            raise ApiError(400, str(e)) from e
        return lambda obj: labels(obj) and fields(obj)

    def _get(self, res: Resource) -> None:
        route = self.route
        assert route.name is not None
        if route.subresource == "log":
            self._log(res)
            return
        obj = self.emu.store.get(res, route.namespace or "", route.name)
        if obj is None:
            raise not_found(res, route.name)
        if self._wants_table():
            self._send_json(200, _table([obj], obj["metadata"]["resourceVersion"]))
        else:
            self._send_json(200, obj)

    def _log(self, res: Resource) -> None:
        route = self.route
        assert route.name is not None
        pod = self.emu.store.get(res, route.namespace or "", route.name)
        if pod is None:
            raise not_found(res, route.name)
        text = self.emu.store.logs.get((route.namespace or "", route.name), "")
        if self.query.get("tailLines"):
            lines = text.splitlines(keepends=True)
            text = "".join(
                lines[-int(self.query["tailLines"]) :] if int(self.query["tailLines"]) else []
            )
        self._send(200, text.encode(), "text/plain")

    def _list(self, res: Resource) -> None:
        items, rv = self.emu.store.list(res, self.route.namespace, self._predicate())
        if self._wants_table():
            self._send_json(200, _table(items, str(rv)))
            return
        self._send_json(
            200,
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(rv)},
                "items": items,
            },
        )

    def _wants_table(self) -> bool:
        accept = self.headers.get("Accept", "")
        first = accept.split(",")[0]
        return "as=Table" in first

    def _create(self, res: Resource) -> None:
        obj = self._body_object()
        self._check_kind(res, obj)
        created = self.emu.store.create(res, self.route.namespace, obj, self._dry_run())
        self._send_json(201, created)

    def _update(self, res: Resource) -> None:
        route = self.route
        assert route.name is not None
        obj = self._body_object()
        self._check_kind(res, obj)
        updated = self.emu.store.update(
            res, route.namespace, route.name, obj, route.subresource, self._dry_run()
        )
        self._send_json(200, updated)

    def _patch(self, res: Resource) -> None:
        route = self.route
        assert route.name is not None
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        patch = self._body_object()
        store = self.emu.store
        apply = content_type == "application/apply-patch+yaml"
        manager = self.query.get("fieldManager", "")
        dry_run = self._dry_run()
        with store.cond:
            current = store.get(res, route.namespace or "", route.name)
            try:
                if current is None:
                    if not apply:
                        raise not_found(res, route.name)
                    self._check_kind(res, patch)
                    created = store.create(res, route.namespace, patch, dry_run)
                    if not dry_run:
                        store.applied[(created["metadata"]["uid"], manager)] = patch
                    self._send_json(201, created)
                    return
                if apply:
                    # server-side apply, roughly: drop what this manager applied last time and
                    # no longer applies, then merge in what it applies now
                    previous = store.applied.get((current["metadata"]["uid"], manager))
                    base = prune_applied(current, previous, patch) if previous else current
                    new = strategic_merge_patch(base, patch)
                elif content_type == "application/json-patch+json":
                    new = json_patch(current, patch)
                elif content_type == "application/merge-patch+json":
                    new = merge_patch(current, patch)
                elif content_type == "application/strategic-merge-patch+json":
                    new = strategic_merge_patch(current, patch)
                else:
                    raise ApiError(
                        415, f"unsupported patch type {content_type!r}", "UnsupportedMediaType"
                    )
            except PatchError as e:
                raise ApiError(422, str(e), "Invalid") from e
            if not isinstance(new, dict):
                raise ApiError(422, "the patch did not produce an object", "Invalid")
            updated = store.update(
                res, route.namespace, route.name, new, route.subresource, dry_run
            )
            if apply and not dry_run:
                store.applied[(updated["metadata"]["uid"], manager)] = patch
        self._send_json(200, updated)

    def _dry_run(self) -> bool:
        """Whether the request asks for ``dryRun=All`` (validate and default, store nothing)."""
        return self.query.get("dryRun") == "All"

    def _delete_options(self) -> Obj:
        options: Obj = {}
        if self.body:
            options = self._body_object()
        for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
            if key in self.query:
                value: Any = self.query[key]
                if key == "orphanDependents":
                    value = value == "true"
                options[key] = value
        return options

    def _delete(self, res: Resource) -> None:
        route = self.route
        assert route.name is not None
        options = self._delete_options()
        dry_run = self._dry_run() or "All" in (options.get("dryRun") or [])
        deleted = self.emu.store.delete(res, route.namespace, route.name, options, dry_run)
        if res.name == "pods" or deleted["metadata"].get("deletionTimestamp"):
            # pods, and objects that wait for finalizers, answer with the object itself
            self._send_json(200, deleted)
            return
        self._send_json(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": route.name,
                    "group": res.group,
                    "kind": res.name,
                    "uid": deleted["metadata"]["uid"],
                },
            },
        )

    def _delete_collection(self, res: Resource) -> None:
        options = self._delete_options()
        store = self.emu.store
        with store.cond:
            items, rv = store.list(res, self.route.namespace, self._predicate())
            deleted = []
            for obj in items:
                meta = obj["metadata"]
                deleted.append(store.delete(res, meta.get("namespace"), meta["name"], options))
        self._send_json(
            200,
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(rv)},
                "items": deleted,
            },
        )

    # ---- watch ---------------------------------------------------------------------------------

    def _watch(self, res: Resource) -> None:
        with self.server.stream():
            self._stream_events(res)

    def _stream_events(self, res: Resource) -> None:
        store = self.emu.store
        predicate = self._predicate()
        namespace = self.route.namespace
        query = self.query
        timeout = query.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        rv = query.get("resourceVersion", "")
        send_initial = query.get("sendInitialEvents")
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        initial: list[Obj] = []
        if send_initial == "true" or (rv in ("", "0") and send_initial != "false"):
            initial, current_rv, index = store.snapshot(res, namespace, predicate)
        else:
            try:
                since = int(rv or store.resource_version)
            except ValueError as e:
                raise ApiError(400, f"invalid resourceVersion {rv!r}") from e
            index, current_rv = store.events_since(since), since
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        for obj in initial:
            self._chunk({"type": "ADDED", "object": self._as_table(obj)})
        if send_initial == "true" and bookmarks:
            self._chunk(
                {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": res.kind,
                        "apiVersion": res.api_version,
                        "metadata": {
                            "resourceVersion": str(current_rv),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                }
            )
        while not store.closed:
            events, index = store.wait_events(index, deadline)
            for event in events:
                if event.group != res.group or event.resource != res.name:
                    continue
                if namespace is not None and event.namespace != namespace:
                    continue
                kind = _filtered_type(event.type, event.object, event.previous, predicate)
                if kind:
                    self._chunk({"type": kind, "object": self._as_table(event.object)})
            if deadline is not None and time.monotonic() >= deadline:
                break
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _as_table(self, obj: Obj) -> Obj:
        """Watch events carry one-row Tables when the client asked for them (kubectl get -w)."""
        if not self._wants_table():
            return obj
        return _table([obj], obj["metadata"].get("resourceVersion", ""))

    def _chunk(self, event: Obj) -> None:
        data = json.dumps(event).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _filtered_type(kind: str, obj: Obj, previous: Obj | None, predicate: Any) -> str | None:
    """The event a filtered watch sends: an object leaving the selection is DELETED for it."""
    now_matches = predicate(obj)
    if kind != "MODIFIED" or previous is None:
        return kind if now_matches else None
    was_matching = predicate(previous)
    if now_matches and was_matching:
        return "MODIFIED"
    if now_matches:
        return "ADDED"
    if was_matching:
        return "DELETED"
    return None


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    created = dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    seconds = int((dt.datetime.now(dt.UTC) - created).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _table(items: list[Obj], rv: str) -> Obj:
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
                "cells": [obj["metadata"]["name"], _age(obj["metadata"].get("creationTimestamp"))],
                "object": obj,
            }
            for obj in items
        ],
    }
