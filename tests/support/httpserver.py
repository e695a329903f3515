"""The threaded HTTP/1.1 server both stand-ins run on (the Kubernetes emulator, the GitHub fake).

What they share is plumbing: a free port of 127.0.0.1, ``serve_forever`` in a background thread,
and a ``stop()`` that also ends idle keep-alive connections. Without that last part a client's
connection pool keeps a request thread blocked reading the next request, so the server would
not go away. What a request gets is each stand-in's own business (its request handler).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POLL_SECONDS = 0.05
"""How often ``serve_forever`` looks for ``shutdown()``: short, so stopping is quick."""


class LocalHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` on a free port of 127.0.0.1 that serves from its own thread.

    Bound when constructed (``url`` is valid at once); ``start()`` serves, ``stop()`` ends it
    and may be called more than once. With ``daemon_threads`` true (the default) ``stop()``
    does not wait for request threads; a subclass that must know every answer has been given
    when ``stop()`` returns sets it false, and ``server_close()`` then joins them.
    """

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._name = name
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve in a background (daemon) thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self._name} is already started")
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": POLL_SECONDS},
            name=self._name,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, shut every open connection (idle keep-alives too), close the socket."""
        if self._thread is None:
            return
        self.shutdown()
        self._thread.join()
        self._thread = None
        self._close_connections()
        self.server_close()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection, remembered while it is open so that ``stop()`` can shut it."""
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Print the traceback of a server bug; a client that hung up is not one."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def _close_connections(self) -> None:
        """Wake request threads blocked reading the next request on a kept-alive connection."""
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # already closed by the client
                    connection.shutdown(socket.SHUT_RDWR)
