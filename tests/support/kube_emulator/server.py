"""HTTP/1.1 front of the emulator: the server, and the handler that routes each request to its
family (``discovery``, ``reads``, ``writes``, ``watches``; what they share is ``exchange``)."""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support.httpserver import LocalHTTPServer

from . import authz, resources, reviews
from .discovery import Discovery
from .exchange import Route
from .reads import Reads
from .store import ApiError
from .watches import Watches
from .writes import Writes

if TYPE_CHECKING:
    from .emulator import Emulator

HANG_LIMIT_SECONDS = 60.0
NAMESPACE_SUBRESOURCES = ("status", "finalize")


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


class Handler(Discovery, Reads, Writes, Watches):
    """One connection; each request is routed to discovery, a read, a write or a watch."""

    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers, 40 ms per answer. The real API server is Go, whose TCP
    # connections have no delay unless asked (net.TCPConn.SetNoDelay: "The default is true").
    disable_nagle_algorithm = True

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

    # ---- a request ---------------------------------------------------------------------------

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
