"""The emulator's writes: create, update (and status), the four kinds of patch, delete and
deletecollection."""

from __future__ import annotations

from typing import Any

from .exchange import Exchange
from .patches import PatchError, json_patch, merge_patch, prune_applied, strategic_merge_patch
from .resources import Resource
from .store import ApiError, Obj, not_found


class Writes(Exchange):
    """create, update, patch, delete and deletecollection."""

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
