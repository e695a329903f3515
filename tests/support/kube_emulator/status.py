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


def _init_done(pod: Obj, stamp: str) -> Obj:
    """The init containers' statuses once each ran to completion (exit code 0, Completed), as
    the kubelet keeps them for the pod's life: they run first, one at a time, each to its end
    before the next and before any main container (pkg/kubelet/kuberuntime
    ``computeInitContainerActions``); empty when the pod has none."""
    inits = pod["spec"].get("initContainers") or []
    if not inits:
        return {}
    started = (pod.get("status") or {}).get("startTime") or stamp
    done = {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": stamp}
    statuses = []
    for container in inits:
        status = _container_status(container, {"terminated": dict(done)}, True)
        status["state"]["terminated"]["containerID"] = status["containerID"]
        statuses.append(status)
    return {"initContainerStatuses": statuses}


def pod_running(pod: Obj) -> Obj:
    """Running and ready, every init container done and every container started."""
    stamp = now()
    containers = pod["spec"].get("containers") or []
    return {
        **_pod_base(pod, stamp),
        "phase": "Running",
        "conditions": _pod_conditions(True, stamp),
        **_init_done(pod, stamp),
        "containerStatuses": [
            _container_status(c, {"running": {"startedAt": stamp}}, True) for c in containers
        ],
    }


def pod_init_failed(pod: Obj, exit_code: int, message: str | None) -> Obj:
    """An init container that exited ``exit_code`` with restartPolicy Never: the pod Failed,
    the failed init container terminated (reason Error, its termination message), the ones
    after it and every main container still waiting in PodInitializing, never started
    (pkg/kubelet/kuberuntime ``computeInitContainerActions``: a failed init container with
    restartPolicy Never fails the pod; pkg/kubelet/kubelet_pods.go ``convertToAPIContainerStatuses``
    gives containers that never ran the PodInitializing reason while init containers are due)."""
    stamp = now()
    started = (pod.get("status") or {}).get("startTime") or stamp
    inits = pod["spec"].get("initContainers") or []
    statuses = []
    for i, container in enumerate(inits):
        if i == 0:
            terminated: Obj = {
                "exitCode": exit_code,
                "reason": "Error",
                "startedAt": started,
                "finishedAt": stamp,
            }
            if message is not None:
                terminated["message"] = message
            status = _container_status(container, {"terminated": terminated}, False)
            terminated["containerID"] = status["containerID"]
        else:
            status = _container_status(container, {"waiting": {"reason": INITIALIZING}}, False)
            del status["containerID"]
        statuses.append(status)
    mains = []
    for container in pod["spec"].get("containers") or []:
        status = _container_status(container, {"waiting": {"reason": INITIALIZING}}, False)
        del status["containerID"]
        mains.append(status)
    names = "[" + " ".join(c.get("name", "") for c in inits) + "]"
    conditions = _pod_conditions(False, stamp, "PodFailed")
    for cond in conditions:
        if cond["type"] == "Initialized":
            cond.update(
                status="False",
                reason="ContainersNotInitialized",
                message=f"containers with incomplete status: {names}",
            )
    return {
        **_pod_base(pod, stamp),
        "phase": "Failed",
        "conditions": conditions,
        "initContainerStatuses": statuses,
        "containerStatuses": mains,
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
        **_init_done(pod, stamp),
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


INITIALIZING = "PodInitializing"


def pod_waiting(pod: Obj, states: WaitingStates, sandbox: bool, initialized: bool = False) -> Obj:
    """A scheduled Pod whose containers cannot start: Pending, each container waiting with its
    reason (``ContainerCreating`` where none is given: the kubelet's default waiting state in
    pkg/kubelet/kubelet_pods.go ``convertToAPIContainerStatuses``), never created (no
    containerID). ``sandbox``: whether the Pod sandbox exists (not while volumes fail to mount).
    Ready and ContainersReady are False with ContainersNotReady and the kubelet's
    "containers with unready status: [a b]" (pkg/kubelet/status/generate.go).

    A Pod with init containers: until they have run (``initialized`` False) they wait with
    their reason from ``states`` or PodInitializing, every main container waits in
    PodInitializing, and Initialized is False, ContainersNotInitialized, "containers with
    incomplete status: [a]" (the same file); once they have (``initialized``), they are
    terminated with exit code 0 and the main containers wait as above."""
    stamp = now()
    containers = pod["spec"].get("containers") or []
    inits = pod["spec"].get("initContainers") or []
    pending_inits = bool(inits) and not initialized
    unready = "[" + " ".join(c.get("name", "") for c in containers) + "]"

    def waiting_status(container: Obj, default: str) -> Obj:
        reason, message = states.get(container.get("name", ""), (default, None))
        waiting: Obj = {"reason": reason}
        if message:
            waiting["message"] = message
        status = _container_status(container, {"waiting": waiting}, False)
        del status["containerID"]
        return status

    main_default = INITIALIZING if pending_inits else "ContainerCreating"
    statuses = [
        waiting_status(c, main_default) if not pending_inits else _initializing(c)
        for c in containers
    ]
    conditions = _pod_conditions(
        False,
        stamp,
        "ContainersNotReady",
        f"containers with unready status: {unready}",
        sandbox,
    )
    extra: Obj = {}
    if pending_inits:
        extra["initContainerStatuses"] = [waiting_status(c, INITIALIZING) for c in inits]
        names = "[" + " ".join(c.get("name", "") for c in inits) + "]"
        for cond in conditions:
            if cond["type"] == "Initialized":
                cond.update(
                    status="False",
                    reason="ContainersNotInitialized",
                    message=f"containers with incomplete status: {names}",
                )
    elif inits:
        extra.update(_init_done(pod, stamp))
    return {
        **_pod_base(pod, stamp, sandbox),
        "phase": "Pending",
        "conditions": conditions,
        **extra,
        "containerStatuses": statuses,
    }


def _initializing(container: Obj) -> Obj:
    status = _container_status(container, {"waiting": {"reason": INITIALIZING}}, False)
    del status["containerID"]
    return status
