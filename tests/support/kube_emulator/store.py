"""The object store: objects by resource, one global resourceVersion counter, the event history.

Every write happens under one lock (a condition variable that also wakes watchers). Stored objects
are never mutated in place: a write stores a fresh copy, so readers and watch events can share them.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .resources import RESOURCES, Resource

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # (group, resource, namespace or "", name)

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error answered as a Kubernetes Status object."""

    def __init__(
        self, code: int, message: str, reason: str | None = None, details: Obj | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> Obj:
        """The Status object the server answers with."""
        out: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _object_error(code: int, reason: str, res: Resource, name: str, message: str) -> ApiError:
    """A Status about one object, worded as the API server words it: ``message`` has a
    ``{what}`` where the object's ``resource.group "name"`` goes."""
    what = f'{res.name}{"." + res.group if res.group else ""} "{name}"'
    details = {"name": name, "group": res.group, "kind": res.name}
    return ApiError(code, message.format(what=what), reason, details)


def not_found(res: Resource, name: str) -> ApiError:
    """The 404 for a missing object."""
    return _object_error(404, "NotFound", res, name, "{what} not found")


def already_exists(res: Resource, name: str) -> ApiError:
    """The 409 for creating an object that exists."""
    return _object_error(409, "AlreadyExists", res, name, "{what} already exists")


def now() -> str:
    """The current time as the API server writes it (RFC 3339, seconds)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    """Random characters as the API server uses them in generated names."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class Event:
    """One change, as a watch sends it."""

    rv: int
    group: str
    resource: str
    namespace: str
    type: str  # ADDED, MODIFIED, DELETED
    object: Obj
    previous: Obj | None = None
    """For MODIFIED: the object before (so a filtered watch can turn it into ADDED/DELETED)."""


Hook = Callable[[str, Resource, Obj], None]
Objs = list[Obj]
Events = list[Event]
# (aliases: inside Store, "list" names its method, not the builtin)


class Store:
    """Objects and their history. All public methods take the lock; hooks run under it."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.closed = False
        self._objects: dict[Key, Obj] = {}
        self._rv = 0
        self._events: list[Event] = []
        self._event_rvs: list[int] = []
        self.defaulter: Callable[[Resource, Obj, Obj | None], None] | None = None
        """Called on every object before it is stored (new object, old object or None)."""
        self.hooks: list[Hook] = []
        """Called after every change (type, resource, stored object), under the lock."""
        self.logs: dict[tuple[str, str], str] = {}
        """Pod logs by (namespace, pod name)."""
        self.applied: dict[tuple[str, str], Obj] = {}
        """The last object each field manager server-side applied, by (uid, manager)."""

    # ---- reading -------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out."""
        return self._rv

    def get(self, res: Resource, namespace: str, name: str) -> Obj | None:
        """A copy of one object, or None."""
        with self.cond:
            obj = self._objects.get(self._key(res, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(
        self, res: Resource, namespace: str | None, predicate: Callable[[Obj], bool] | None = None
    ) -> tuple[Objs, int]:
        """Matching objects sorted by namespace and name, and the current resourceVersion."""
        with self.cond:
            items = [
                copy.deepcopy(obj)
                for key, obj in sorted(self._objects.items())
                if key[0] == res.group
                and key[1] == res.name
                and (namespace is None or key[2] == namespace)
                and (predicate is None or predicate(obj))
            ]
            return items, self._rv

    def namespace_exists(self, name: str) -> bool:
        """Whether a Namespace of this name is stored."""
        with self.cond:
            return ("", "namespaces", "", name) in self._objects

    # ---- writing -------------------------------------------------------------------------

    def create(self, res: Resource, namespace: str | None, obj: Obj, dry_run: bool = False) -> Obj:
        """Store a new object; ApiError 409 when it exists, 404 when its namespace does not.

        With dry_run, everything but storing (and the controllers) happens.
        """
        with self.cond:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + random_suffix()
            name = meta.get("name")
            if not name:
                raise ApiError(422, f"{res.kind}: metadata.name: Required value: name is required")
            ns = self._check_namespace(res, namespace, meta)
            key = self._key(res, ns, name)
            if key in self._objects:
                raise already_exists(res, name)
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            for field in ("resourceVersion", "deletionTimestamp", "managedFields"):
                meta.pop(field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if res.has_status:
                meta["generation"] = 1
                obj.pop("status", None)
            if self.defaulter:
                self.defaulter(res, obj, None)
            if dry_run:
                return obj
            return self._write(key, res, obj, "ADDED")

    def update(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        obj: Obj,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Replace an object (PUT). ApiError 409 on a stale resourceVersion, 404 when absent."""
        with self.cond:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiError(
                    400,
                    f"the name of the object ({meta.get('name')}) does not match the name on"
                    f" the URL ({name})",
                )
            meta["name"] = name
            ns = self._check_namespace(res, namespace, meta, must_exist=False)
            key = self._key(res, ns, name)
            old = self._objects.get(key)
            if old is None:
                raise not_found(res, name)
            sent_rv = meta.get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            if subresource == "status":
                new = copy.deepcopy(old)
                if "status" in obj:
                    new["status"] = obj["status"]
                else:
                    new.pop("status", None)
            else:
                new = obj
                new["apiVersion"], new["kind"] = res.api_version, res.kind
                for field in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
                    if field in old["metadata"]:
                        meta[field] = old["metadata"][field]
                    else:
                        meta.pop(field, None)
                meta.pop("managedFields", None)
                if res.has_status:
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                    else:
                        new.pop("status", None)
            if self.defaulter:
                self.defaulter(res, new, old)
            if res.has_status and _spec(new) != _spec(old):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            if _without_rv(new) == _without_rv(old):
                return copy.deepcopy(old)
            if dry_run:
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
                return new
            stored = self._write(key, res, new, "MODIFIED")
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                self._remove(key, res)
            return stored

    def delete(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        options: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Delete an object and, unless orphaned, what it owns. Returns the deleted object."""
        options = options or {}
        with self.cond:
            key = self._key(res, namespace or "", name)
            old = self._objects.get(key)
            if old is None:
                raise not_found(res, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise ApiError(409, f"Precondition failed: UID in precondition: {pre['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"].get(
                "resourceVersion"
            ):
                raise conflict(res, name)
            if dry_run:
                return copy.deepcopy(old)
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return copy.deepcopy(old)
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = now()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                return self._write(key, res, new, "MODIFIED")
            policy = options.get("propagationPolicy")
            if not policy:
                orphan = options.get("orphanDependents")
                if orphan is None:
                    orphan = res.group == "batch" and res.name == "jobs"
                policy = "Orphan" if orphan else "Background"
            deleted = self._remove(key, res)
            self._cascade(old["metadata"]["uid"], policy)
            if res.name == "namespaces" and not res.group:
                for other in [k for k in self._objects if k[2] == name and k[0:2] != key[0:2]]:
                    if other in self._objects:
                        self._remove(other, None)
            return deleted

    def set_status(self, res: Resource, obj: Obj, status: Obj) -> Obj:
        """Replace an object's status as a controller does (whatever its resourceVersion)."""
        new = {**obj, "status": status}
        new["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
        return self.update(
            res, obj["metadata"].get("namespace"), obj["metadata"]["name"], new, "status"
        )

    def seed(self, res: Resource, obj: Obj) -> Obj:
        """Create or replace an object as a client would (used by Emulator.put)."""
        with self.cond:
            meta = obj.get("metadata") or {}
            namespace = meta.get("namespace") if res.namespaced else None
            if res.namespaced and not namespace:
                raise ApiError(400, "a namespaced object needs metadata.namespace")
            current = self.get(res, namespace or "", meta.get("name", ""))
            if current is None:
                created = self.create(res, namespace, obj)
                if res.has_status and "status" in obj:
                    created = {**created, "status": obj["status"]}
                    return self.update(
                        res, namespace, created["metadata"]["name"], created, "status"
                    )
                return created
            obj = copy.deepcopy(obj)
            obj["metadata"].pop("resourceVersion", None)
            updated = self.update(res, namespace, meta["name"], obj)
            if res.has_status and "status" in obj:
                updated = self.update(res, namespace, meta["name"], obj, "status")
            return updated

    def close(self) -> None:
        """Wake and end every watcher."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # ---- watching ------------------------------------------------------------------------

    def events_since(self, rv: int) -> int:
        """The index in the history of the first event after resourceVersion rv."""
        with self.cond:
            return bisect.bisect_right(self._event_rvs, rv)

    def wait_events(self, index: int, deadline: float | None) -> tuple[Events, int]:
        """Events from history index on, waiting until there are some, the deadline or close."""
        with self.cond:
            while len(self._events) <= index and not self.closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self.cond.wait(remaining if remaining is not None else 5.0)
            return self._events[index:], len(self._events)

    def snapshot(
        self, res: Resource, namespace: str | None, predicate: Callable[[Obj], bool]
    ) -> tuple[Objs, int, int]:
        """Current matching objects, the resourceVersion and the history index, atomically."""
        with self.cond:
            items, rv = self.list(res, namespace, predicate)
            return items, rv, len(self._events)

    # ---- internals -----------------------------------------------------------------------

    def _key(self, res: Resource, namespace: str | None, name: str) -> Key:
        return (res.group, res.name, namespace or "" if res.namespaced else "", name)

    def _check_namespace(
        self, res: Resource, namespace: str | None, meta: Obj, must_exist: bool = True
    ) -> str:
        if not res.namespaced:
            meta.pop("namespace", None)
            return ""
        given = meta.get("namespace")
        if namespace and given and given != namespace:
            raise ApiError(
                400,
                "the namespace of the provided object does not match the namespace sent on the"
                " request",
            )
        ns = namespace or given
        if not ns:
            raise ApiError(400, "a namespace is required for a namespaced resource")
        meta["namespace"] = ns
        if must_exist and not self.namespace_exists(ns):
            raise ApiError(
                404,
                f'namespaces "{ns}" not found',
                "NotFound",
                {"name": ns, "kind": "namespaces"},
            )
        return ns

    def _write(self, key: Key, res: Resource, obj: Obj, kind: str) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        previous = self._objects.get(key)
        self._objects[key] = obj
        self._record(res, key[2], kind, obj, previous)
        return copy.deepcopy(obj)

    def _remove(self, key: Key, res: Resource | None) -> Obj:
        res = res or lookup_by_key(key)
        old = self._objects.pop(key)
        self._rv += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        if res is not None:
            self._record(res, key[2], "DELETED", gone)
        if res is not None and res.name == "pods" and not res.group:
            self.logs.pop((key[2], key[3]), None)
        return copy.deepcopy(gone)

    def _record(
        self, res: Resource, namespace: str, kind: str, obj: Obj, previous: Obj | None = None
    ) -> None:
        self._events.append(Event(self._rv, res.group, res.name, namespace, kind, obj, previous))
        self._event_rvs.append(self._rv)
        self.cond.notify_all()
        for hook in self.hooks:
            hook(kind, res, obj)

    def _cascade(self, owner_uid: str, policy: str) -> None:
        for key, obj in list(self._objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if not any(ref.get("uid") == owner_uid for ref in refs):
                continue
            res = lookup_by_key(key)
            if res is None or key not in self._objects:
                continue
            if policy == "Orphan":
                new = copy.deepcopy(obj)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                self._write(key, res, new, "MODIFIED")
            else:
                self._remove(key, res)
                self._cascade(obj["metadata"]["uid"], "Background")


def lookup_by_key(key: Key) -> Resource | None:
    """The resource of a store key."""
    return next((r for r in RESOURCES if r.group == key[0] and r.name == key[1]), None)


def conflict(res: Resource, name: str) -> ApiError:
    """The 409 for a write with a stale resourceVersion."""
    return _object_error(
        409,
        "Conflict",
        res,
        name,
        "Operation cannot be fulfilled on {what}: the object has been modified; please apply"
        " your changes to the latest version and try again",
    )


def _spec(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_rv(obj: Obj) -> Obj:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}
