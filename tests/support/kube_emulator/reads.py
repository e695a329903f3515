"""The emulator's reads: get (as an object or a kubectl Table), a pod's log, list."""

from __future__ import annotations

from .exchange import Exchange, table
from .resources import Resource
from .store import not_found


class Reads(Exchange):
    """get, pods/log and list."""

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
            self._send_json(200, table([obj], obj["metadata"]["resourceVersion"]))
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
            self._send_json(200, table(items, str(rv)))
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
