"""Status shapes the control plane writes: conditions, owner references, and the Pod statuses
the scheduler and the kubelet report (running, finished, and the ways a Pod stays Pending)."""

from __future__ import annotations

import uuid

from .store import Obj, now

WaitingStates = dict[str, tuple[str, str | None]]
"""Per container name: the waiting reason and message (None: no message)."""


def owner_reference(obj: Obj) -> Obj:
    """The controller ownerReference to ``obj``."""
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(kind: str, reason: str, message: str, stamp: str, *, update: bool = False) -> Obj:
    """A True condition; ``update``: the lastUpdateTime kind (Deployments), else lastProbeTime."""
    out = {"type": kind, "status": "True", "reason": reason, "message": message}
    if update:
        out.update(lastUpdateTime=stamp, lastTransitionTime=stamp)
    else:
        out.update(lastProbeTime=stamp, lastTransitionTime=stamp)
    return out


def _pod_condition(kind: str, ok: bool, stamp: str, reason: str | None, message: str | None) -> Obj:
    cond: Obj = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": stamp,
    }
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def _pod_conditions(
    ready: bool,
    stamp: str,
    reason: str | None = None,
    message: str | None = None,
    sandbox: bool = True,
) -> list[Obj]:
    """The kubelet's five conditions: only Ready and ContainersReady follow ``ready``;
    PodReadyToStartContainers follows ``sandbox`` (False until the volumes are mounted)."""
    out = []
    for kind in (
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ):
        ok = ready or kind not in ("Ready", "ContainersReady")
        if kind == "PodReadyToStartContainers":
            ok = sandbox
        out.append(_pod_condition(kind, ok, stamp, reason, message))
    return out


def _pod_base(pod: Obj, stamp: str, sandbox: bool = True) -> Obj:
    """Node and Pod addresses, QoS and start time; a Pod gets its IP with its sandbox."""
    base: Obj = {
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "qosClass": (pod.get("status") or {}).get("qosClass") or "BestEffort",
        "startTime": (pod.get("status") or {}).get("startTime") or stamp,
    }
    if sandbox:
        base.update(podIP="10.244.0.2", podIPs=[{"ip": "10.244.0.2"}])
    return base


def _container_status(container: Obj, state: Obj, ready: bool) -> Obj:
    return {
        "name": container.get("name", ""),
        "image": container.get("image", ""),
        "imageID": "",
        "containerID": f"containerd://{uuid.uuid4().hex}",
        "ready": ready,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
        "lastState": {},
    }


def pod_running(pod: Obj) -> Obj:
    """Running and ready, every container started."""
    stamp = now()
    containers = pod["spec"].get("containers") or []
    return {
        **_pod_base(pod, stamp),
        "phase": "Running",
        "conditions": _pod_conditions(True, stamp),
        "containerStatuses": [
            _container_status(c, {"running": {"startedAt": stamp}}, True) for c in containers
        ],
    }


def pod_terminated(pod: Obj, ok: bool, message: str | None) -> Obj:
    """Succeeded (exit code 0) or Failed (exit code 1), with the termination message."""
    stamp = now()
    containers = pod["spec"].get("containers") or []
    started = (pod.get("status") or {}).get("startTime") or stamp
    terminated: Obj = {
        "exitCode": 0 if ok else 1,
        "reason": "Completed" if ok else "Error",
        "startedAt": started,
        "finishedAt": stamp,
    }
    if message is not None:
        terminated["message"] = message
    statuses = []
    for container in containers:
        status = _container_status(container, {"terminated": dict(terminated)}, False)
        status["state"]["terminated"]["containerID"] = status["containerID"]
        statuses.append(status)
    return {
        **_pod_base(pod, stamp),
        "phase": "Succeeded" if ok else "Failed",
        "conditions": _pod_conditions(False, stamp, "PodCompleted"),
        "containerStatuses": statuses,
    }


def pod_unschedulable(pod: Obj, message: str) -> Obj:
    """What the scheduler writes when no node fits: Pending, no node, no container statuses,
    PodScheduled False with reason Unschedulable (pkg/scheduler/schedule_one.go
    ``handleSchedulingFailure``: ``v1.PodReasonUnschedulable`` and the FitError's message)."""
    return {
        "phase": "Pending",
        "qosClass": (pod.get("status") or {}).get("qosClass") or "BestEffort",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": now(),
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    }


def pod_waiting(pod: Obj, states: WaitingStates, sandbox: bool) -> Obj:
    """A scheduled Pod whose containers cannot start: Pending, each container waiting with its
    reason (``ContainerCreating`` where none is given: the kubelet's default waiting state in
    pkg/kubelet/kubelet_pods.go ``convertToAPIContainerStatuses``), never created (no
    containerID). ``sandbox``: whether the Pod sandbox exists (not while volumes fail to mount).
    Ready and ContainersReady are False with ContainersNotReady and the kubelet's
    "containers with unready status: [a b]" (pkg/kubelet/status/generate.go)."""
    stamp = now()
    containers = pod["spec"].get("containers") or []
    unready = "[" + " ".join(c.get("name", "") for c in containers) + "]"
    statuses = []
    for container in containers:
        reason, message = states.get(container.get("name", ""), ("ContainerCreating", None))
        waiting: Obj = {"reason": reason}
        if message:
            waiting["message"] = message
        status = _container_status(container, {"waiting": waiting}, False)
        del status["containerID"]
        statuses.append(status)
    conditions = _pod_conditions(
        False,
        stamp,
        "ContainersNotReady",
        f"containers with unready status: {unready}",
        sandbox,
    )
    return {
        **_pod_base(pod, stamp, sandbox),
        "phase": "Pending",
        "conditions": conditions,
        "containerStatuses": statuses,
    }
