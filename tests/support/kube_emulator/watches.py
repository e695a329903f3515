"""The emulator's watches: chunked event streams, with initial events and bookmarks."""

from __future__ import annotations

import json
import time
from typing import Any

from .exchange import Exchange, table
from .resources import Resource
from .store import ApiError, Obj


class Watches(Exchange):
    """watch, as a chunked stream of JSON events."""

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
        return table([obj], obj["metadata"].get("resourceVersion", ""))

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
