"""The scheduler and the kubelet for one Pod: whether it can start, and if not, the status and
Events a real cluster shows for what stops it.

In the real order: the scheduler (a test's ``unschedulable``), the volume manager (a secret or
configMap volume whose object or key is missing: FailedMount), the image (a test's
``image-pull-error``), the container configuration (a missing Secret, ConfigMap or key in
``env``/``envFrom``: CreateContainerConfigError). What stops a Pod is reported once, and again
only when it changes.
"""

from __future__ import annotations

from collections.abc import Callable

from . import kubelet
from .recorder import Recorder
from .resources import Resource, find
from .status import WaitingStates, pod_unschedulable, pod_waiting
from .store import Obj, Store

UNSCHEDULABLE = (
    "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available:"
    " 1 No preemption victims found for incoming pod.."
)
"""FitError.Error (pkg/scheduler/framework/types.go): "0/N nodes are available:", the filter
reasons, then the preemption PostFilter's own message, each followed by "." (so it ends "..")."""


def _served(name: str) -> Resource:
    res = find("v1", name)
    assert res is not None
    return res


PODS = _served("pods")


def pull_error(image: str) -> str:
    """What containerd answers for a tag that does not exist, as the kubelet passes it on."""
    return (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}":'
        f' failed to resolve reference "{image}": {image}: not found'
    )


class PodStarter:
    """Starts Pods as far as they get; remembers those waiting for a Secret or ConfigMap."""

    def __init__(self, store: Store, events: Recorder) -> None:
        self.store = store
        self.events = events
        self._stopped: dict[str, tuple[object, ...]] = {}
        """What stops each Pod that cannot start, by uid (reported once per change)."""
        self._waiting: dict[str, tuple[str, str]] = {}
        """Pods stopped by a missing Secret or ConfigMap, by uid: (namespace, name)."""

    def waiting_in(self, namespace: str) -> list[tuple[str, str]]:
        """(uid, name) of the Pods in a namespace that wait for a Secret or ConfigMap."""
        return [(uid, name) for uid, (ns, name) in self._waiting.items() if ns == namespace]

    def forget(self, uid: str) -> None:
        """Stop tracking a Pod (it started, ended, or went away)."""
        self._stopped.pop(uid, None)
        self._waiting.pop(uid, None)

    def can_start(self, pod: Obj, outcome: str, message: str | None) -> bool:
        """Whether the Pod's containers can start; if not, its status and Events say why.
        ``outcome``/``message``: the test's rule for the Pod's Job (``unschedulable`` and
        ``image-pull-error`` stop it; ``message`` is then what the scheduler or registry said)."""
        meta = pod["metadata"]
        uid, namespace = meta["uid"], meta["namespace"]

        def lookup(resource: str, name: str) -> Obj | None:
            return self.store.get(_served(resource), namespace, name)

        self._waiting.pop(uid, None)
        if outcome == "unschedulable":
            text = message or UNSCHEDULABLE
            return self._stop(pod, ("unschedulable",), lambda: self._unschedulable(pod, text))
        mounts = kubelet.mount_errors(pod, lookup)
        if mounts:
            self._waiting[uid] = (namespace, meta["name"])
            return self._stop(pod, ("mount", *mounts), lambda: self._failed_mount(pod, mounts))
        if outcome == "image-pull-error":
            return self._stop(pod, ("image",), lambda: self._image_pull_error(pod, message))
        configs = kubelet.config_errors(pod, lookup)
        if configs:
            self._waiting[uid] = (namespace, meta["name"])
            signature = ("config", *sorted(configs.items()))
            return self._stop(pod, signature, lambda: self._config_error(pod, configs))
        self.forget(uid)
        return True

    def _stop(self, pod: Obj, why: tuple[object, ...], report: Callable[[], None]) -> bool:
        uid = pod["metadata"]["uid"]
        if self._stopped.get(uid) != why:
            self._stopped[uid] = why
            report()
        return False

    def _unschedulable(self, pod: Obj, message: str) -> None:
        # The scheduler's handleSchedulingFailure (pkg/scheduler/schedule_one.go) records a
        # FailedScheduling Event and sets PodScheduled False, reason Unschedulable.
        self.store.set_status(PODS, pod, pod_unschedulable(pod, message))
        self.events.scheduler(pod, "FailedScheduling", message)

    def _failed_mount(self, pod: Obj, errors: list[tuple[str, str]]) -> None:
        # The volume manager reports each failure as a Warning FailedMount Event on the Pod
        # (operation_generator.go, kevents.FailedMountVolume); no sandbox, no containers yet.
        self.store.set_status(PODS, pod, pod_waiting(pod, {}, sandbox=False))
        for _, message in errors:
            self.events.legacy(pod, "Warning", "FailedMount", message, "kubelet")

    def _image_pull_error(self, pod: Obj, message: str | None) -> None:
        """ErrImagePull, then ImagePullBackOff, as pkg/kubelet/images/image_manager.go
        ``EnsureImageExists`` reports a failed pull and then the retry in back-off (whose
        message carries the pull error since 1.32: "Back-off pulling image "X": ErrImagePull:
        <error>"); kuberuntime's ``startContainer`` adds the "Error: <reason>" Events."""
        containers = pod["spec"].get("containers") or []
        pulls: WaitingStates = {}
        backoffs: WaitingStates = {}
        for container in containers:
            name, image = container.get("name", ""), container.get("image", "")
            error = message or pull_error(image)
            pulls[name] = ("ErrImagePull", error)
            back_off = f'Back-off pulling image "{image}"'
            backoffs[name] = ("ImagePullBackOff", f"{back_off}: ErrImagePull: {error}")
            self._kubelet(pod, "Normal", "Pulling", f'Pulling image "{image}"', name)
            self._kubelet(
                pod, "Warning", "Failed", f'Failed to pull image "{image}": {error}', name
            )
            self._kubelet(pod, "Warning", "Failed", "Error: ErrImagePull", name)
        # The init containers (their own image) ran; the main containers' pull is what fails.
        waiting = pod_waiting(pod, pulls, sandbox=True, initialized=True)
        pod = self.store.set_status(PODS, pod, waiting)
        for container in containers:
            name, image = container.get("name", ""), container.get("image", "")
            self._kubelet(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', name)
            self._kubelet(pod, "Warning", "Failed", "Error: ImagePullBackOff", name)
        waiting = pod_waiting(pod, backoffs, sandbox=True, initialized=True)
        self.store.set_status(PODS, pod, waiting)

    def _config_error(self, pod: Obj, errors: dict[str, str]) -> None:
        # kuberuntime_container.go startContainer: a failed generateContainerConfig records
        # "Error: <message>" (reason Failed); the container waits, CreateContainerConfigError.
        states: WaitingStates = {
            name: ("CreateContainerConfigError", error) for name, error in errors.items()
        }
        inits = {c.get("name") for c in pod["spec"].get("initContainers") or []}
        initialized = not inits & set(errors)  # else an init container is the one that waits
        waiting = pod_waiting(pod, states, sandbox=True, initialized=initialized)
        self.store.set_status(PODS, pod, waiting)
        for name, error in errors.items():
            self._kubelet(pod, "Warning", "Failed", f"Error: {error}", name)

    def _kubelet(self, pod: Obj, kind: str, reason: str, message: str, container: str) -> None:
        self.events.legacy(pod, kind, reason, message, "kubelet", container)
