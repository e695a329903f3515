"""A NOTIFY_URL for tests: an HTTP server on 127.0.0.1 that keeps every JSON body posted."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: NotifyServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length))
        with self.server.lock:
            self.server.bodies.append(body)
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read ``bodies``


class NotifyServer(ThreadingHTTPServer):
    """Answers every POST with ``status`` (200 unless a test sets another)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self._thread = threading.Thread(target=self.serve_forever, name="notify", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/fake"

    @property
    def events(self) -> list[str]:
        """The ``event`` of each body received, in order."""
        with self.lock:
            return [str(b.get("event")) for b in self.bodies]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
