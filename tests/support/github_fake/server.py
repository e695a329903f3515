"""HTTP plumbing: each request, as an ``Incoming``, goes to a callback whose ``Reply`` is sent.

Knows nothing about GitHub; ``fake.py`` decides what each request gets. The server itself is the
shared ``tests.support.httpserver.LocalHTTPServer``.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.httpserver import LocalHTTPServer


@dataclass(frozen=True)
class Incoming:
    """A request as received: ``path`` is still percent-encoded and without the query."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value, whatever case the client spelt its name in."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Reply:
    """What to answer; Content-Length is added by the server."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0
    """Bytes per second to send the body at (0: all at once), as a bad link would."""
    stopping: threading.Event | None = None
    """Ends a trickle early when the fake stops."""


Handle = Callable[[Incoming], Reply | None]
"""Answers a request; ``None`` means: close the connection without answering."""


class Server(LocalHTTPServer):
    """One listening port whose requests all go to ``handle``."""

    # Not daemon threads: stop() then returns only once every request thread has ended, so a
    # request held by ``slow_next`` is in the fake's log when ``GitHubFake.stop()`` returns.
    daemon_threads = False

    def __init__(self, handle: Handle, name: str) -> None:
        super().__init__(_RequestHandler, name)
        self.handle = handle


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid a 40 ms stall
    server: Server

    def version_string(self) -> str:
        return "GitHub.com"

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read ``GitHubFake.requests`` instead

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        url = urlsplit(self.path)
        incoming = Incoming(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=dict(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
        )
        try:
            reply = self.server.handle(incoming)
        except Exception:
            traceback.print_exc()  # a bug in the fake: say so loudly, answer 500
            reply = Reply(500, b'{"message": "the GitHub fake crashed; see stderr"}')
        if reply is None:
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            has_body = reply.status not in (204, 304)
            if has_body:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if has_body and self.command != "HEAD":
                self._write(reply)
        except ConnectionError:  # the client gave up (e.g. its timeout fired)
            self.close_connection = True

    def _write(self, reply: Reply) -> None:
        if not reply.trickle:
            self.wfile.write(reply.body)
            return
        # Small writes at the given rate (ten a second, or one byte at a time below 10 bytes a
        # second), until the body or the fake ends.
        step = max(1, int(reply.trickle / 10))
        pause = step / reply.trickle
        for start in range(0, len(reply.body), step):
            self.wfile.write(reply.body[start : start + step])
            self.wfile.flush()
            if reply.stopping is not None and reply.stopping.wait(pause):
                return
