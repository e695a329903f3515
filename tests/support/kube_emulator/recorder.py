"""core/v1 Events as the control plane records them about what went wrong (a Job that cannot
create its Pod, a Pod that cannot be scheduled or started)."""

from __future__ import annotations

import datetime as dt
import time

from .resources import Resource, find
from .store import Obj, Store, now


def _events() -> Resource:
    res = find("v1", "events")
    assert res is not None
    return res


EVENTS = _events()
NODE = "emulator-node"


class Recorder:
    """Writes Events into the store, named as client-go's recorder names them."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._last = 0

    def _name(self, obj: Obj) -> str:
        # client-go tools/record makeEvent: "<object name>.<unix nanoseconds in hex>"; kept
        # strictly increasing so that two Events in one nanosecond do not collide.
        self._last = max(time.time_ns(), self._last + 1)
        return f"{obj['metadata']['name']}.{self._last:x}"

    def _write(self, obj: Obj, event: Obj) -> Obj:
        namespace = obj["metadata"].get("namespace") or "default"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": self._name(obj), "namespace": namespace},
            **event,
        }
        return self._store.create(EVENTS, namespace, event)

    def legacy(
        self,
        obj: Obj,
        kind: str,
        reason: str,
        message: str,
        component: str,
        container: str | None = None,
    ) -> Obj:
        """An Event from client-go's core/v1 recorder (tools/record ``makeEvent`` and
        ``generateEvent``), as the kubelet (component "kubelet", on the node) and the Job
        controller ("job-controller") write them. ``container``: the Event is about that
        container of a Pod (involvedObject.fieldPath ``spec.containers{name}``)."""
        host = NODE if component == "kubelet" else ""
        stamp = now()
        source: Obj = {"component": component}
        if host:
            source["host"] = host
        return self._write(
            obj,
            {
                "involvedObject": _reference(obj, container),
                "reason": reason,
                "message": message,
                "type": kind,
                "source": source,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "eventTime": None,  # a MicroTime struct: Go's JSON writes null, not nothing
                "reportingComponent": component,
                "reportingInstance": host,
            },
        )

    def scheduler(self, pod: Obj, reason: str, message: str) -> Obj:
        """An Event from the scheduler, which records through events.k8s.io/v1 (as read back
        through core/v1: eventTime, action, reportingComponent, no source or count)."""
        event_time = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return self._write(
            pod,
            {
                "involvedObject": _reference(pod, None),
                "reason": reason,
                "message": message,
                "type": "Warning",
                "source": {},
                "firstTimestamp": None,
                "lastTimestamp": None,
                "eventTime": event_time,
                "action": "Scheduling",
                "reportingComponent": "default-scheduler",
                "reportingInstance": f"default-scheduler-{NODE}",
            },
        )


def _reference(obj: Obj, container: str | None) -> Obj:
    """The ObjectReference client-go's ``reference.GetReference`` makes (plus the container's
    fieldPath, as the kubelet's ``GenerateContainerRef`` adds)."""
    meta = obj["metadata"]
    ref = {
        "kind": obj["kind"],
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": obj["apiVersion"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if container is not None:
        # pkg/kubelet/container/ref.go ``fieldPath``: an init container is named by its list.
        inits = {c.get("name") for c in (obj.get("spec") or {}).get("initContainers") or []}
        where = "initContainers" if container in inits else "containers"
        ref["fieldPath"] = f"spec.{where}{{{container}}}"
    return ref
