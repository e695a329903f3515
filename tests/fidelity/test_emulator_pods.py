"""Pods that cannot start, as the kubernetes client sees them: a missing Secret or ConfigMap
(any API server: the kubelet reports it), and (emulator only) a Job whose image cannot be
pulled, whose Pod cannot be scheduled, or whose Pod is refused by admission."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client, watch

from tests.support.kube_emulator import Emulator
from tests.support.kube_target import KubeTarget

IMAGE = "busybox:1.36"  # pullable, so that on a real cluster only the missing object stops it
WAIT = 120  # seconds; a real kubelet retries a failed mount with back-off


def job(name: str, image: str = IMAGE, **pod: Any) -> client.V1Job:
    """A one-Pod Job whose container exits 0; ``pod``: extra container fields (env, ...) and
    ``volumes``/``volume_mounts``."""
    volumes = pod.pop("volumes", None)
    container = client.V1Container(name="build", image=image, command=["true"], **pod)
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never", containers=[container], volumes=volumes
                )
            ),
        ),
    )


def until(list_fn: Any, ns: str, ok: Callable[[Any], bool], **kw: Any) -> Any:
    """Watch (current state first) until an object satisfies ``ok``; fail after WAIT seconds."""
    w = watch.Watch()
    try:
        for event in w.stream(list_fn, ns, timeout_seconds=WAIT, **kw):
            if event["type"] != "DELETED" and ok(event["object"]):
                return event["object"]
    finally:
        w.stop()
    pytest.fail(f"no {list_fn.__name__} object became as expected within {WAIT}s")


def job_pod(api: client.ApiClient, ns: str, name: str, ok: Callable[[Any], bool]) -> Any:
    selector = f"batch.kubernetes.io/job-name={name}"
    core = client.CoreV1Api(api)
    return until(core.list_namespaced_pod, ns, ok, label_selector=selector)


def waiting(pod: Any, reason: str) -> bool:
    statuses = pod.status.container_statuses or []
    return any(s.state.waiting and s.state.waiting.reason == reason for s in statuses)


def complete(api: client.ApiClient, ns: str, name: str) -> Any:
    batch = client.BatchV1Api(api)
    return until(
        batch.list_namespaced_job,
        ns,
        lambda j: any(c.type == "Complete" for c in j.status.conditions or []),
        field_selector=f"metadata.name={name}",
    )


def event_about(api: client.ApiClient, ns: str, uid: str, reason: str, message: str) -> Any:
    """The Event about the object of this uid with this reason and message (waits for it)."""
    return until(
        client.CoreV1Api(api).list_namespaced_event,
        ns,
        lambda e: e.reason == reason and e.message == message,
        field_selector=f"involvedObject.uid={uid}",
    )


def secret(name: str, **data: str) -> client.V1Secret:
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)


# ---- a missing Secret or ConfigMap: the kubelet's own checks, on any API server -------------


@pytest.mark.kubelet
def test_a_missing_secret_in_env_waits_with_create_container_config_error(
    api: client.ApiClient, kube: KubeTarget
) -> None:
    core, ns = client.CoreV1Api(api), kube.namespace
    token = client.V1EnvVarSource(
        secret_key_ref=client.V1SecretKeySelector(name="git", key="token")
    )
    client.BatchV1Api(api).create_namespaced_job(
        ns, job("env", env=[client.V1EnvVar(name="GIT_TOKEN", value_from=token)])
    )

    pod = job_pod(api, ns, "env", lambda p: waiting(p, "CreateContainerConfigError"))
    assert pod.status.phase == "Pending"
    [status] = pod.status.container_statuses
    assert status.state.waiting.message == 'secret "git" not found'
    assert not status.ready and status.restart_count == 0
    failed = event_about(api, ns, pod.metadata.uid, "Failed", 'Error: secret "git" not found')
    assert failed.type == "Warning"
    assert failed.source.component == "kubelet"
    assert failed.involved_object.field_path == "spec.containers{build}"

    core.create_namespaced_secret(ns, secret("git", user="x"))
    no_key = f"couldn't find key token in Secret {ns}/git"
    pod = job_pod(
        api, ns, "env", lambda p: p.status.container_statuses[0].state.waiting.message == no_key
    )
    assert waiting(pod, "CreateContainerConfigError")

    core.patch_namespaced_secret("git", ns, {"stringData": {"token": "t"}})
    assert complete(api, ns, "env").status.succeeded == 1


@pytest.mark.kubelet
def test_a_missing_secret_volume_fails_to_mount(api: client.ApiClient, kube: KubeTarget) -> None:
    core, ns = client.CoreV1Api(api), kube.namespace
    items = [client.V1KeyToPath(key=".dockerconfigjson", path="config.json")]
    source = client.V1SecretVolumeSource(secret_name="regcred", items=items)
    client.BatchV1Api(api).create_namespaced_job(
        ns,
        job(
            "mount",
            volumes=[client.V1Volume(name="registry-auth", secret=source)],
            volume_mounts=[client.V1VolumeMount(name="registry-auth", mount_path="/auth")],
        ),
    )

    pod = job_pod(api, ns, "mount", lambda p: waiting(p, "ContainerCreating"))
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.message is None
    sandbox = next(c for c in pod.status.conditions if c.type == "PodReadyToStartContainers")
    assert sandbox.status == "False"
    prefix = 'MountVolume.SetUp failed for volume "registry-auth" : '
    event = event_about(
        api, ns, pod.metadata.uid, "FailedMount", prefix + 'secret "regcred" not found'
    )
    assert (event.type, event.source.component) == ("Warning", "kubelet")

    core.create_namespaced_secret(ns, secret("regcred", other="{}"))
    missing_key = prefix + "references non-existent secret key: .dockerconfigjson"
    event_about(api, ns, pod.metadata.uid, "FailedMount", missing_key)

    core.patch_namespaced_secret("regcred", ns, {"stringData": {".dockerconfigjson": "{}"}})
    assert complete(api, ns, "mount").status.succeeded == 1


@pytest.mark.kubelet
def test_a_pod_waits_for_its_configmap_and_ignores_optional_references(
    api: client.ApiClient, kube: KubeTarget
) -> None:
    core, ns = client.CoreV1Api(api), kube.namespace
    optional = client.V1EnvVarSource(
        secret_key_ref=client.V1SecretKeySelector(name="nope", key="k", optional=True)
    )
    container = client.V1Container(
        name="app",
        image=IMAGE,
        command=["sleep", "3600"],
        env_from=[client.V1EnvFromSource(config_map_ref=client.V1ConfigMapEnvSource(name="cfg"))],
        env=[client.V1EnvVar(name="MAYBE", value_from=optional)],
    )
    core.create_namespaced_pod(
        ns,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="app"), spec=client.V1PodSpec(containers=[container])
        ),
    )
    named = {"field_selector": "metadata.name=app"}
    pod = until(
        core.list_namespaced_pod,
        ns,
        lambda p: waiting(p, "CreateContainerConfigError"),
        **named,
    )
    assert pod.status.container_statuses[0].state.waiting.message == 'configmap "cfg" not found'

    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"A": "1"})
    )
    running = until(core.list_namespaced_pod, ns, lambda p: p.status.phase == "Running", **named)
    assert running.status.container_statuses[0].state.running is not None


# ---- emulator only: a Job whose Pod cannot be pulled, scheduled or created ------------------


@pytest.mark.kubelet
def test_image_pull_error_then_back_off_until_released(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    ns, image = kube.namespace, "ghcr.io/acme/kaniko:v0"
    emulator.jobs.behave("image-pull-error", name="pull-*")
    created = client.BatchV1Api(api).create_namespaced_job(ns, job("pull-1", image=image))

    seen = []  # waiting reasons, in the order a watcher sees them
    w = watch.Watch()
    for event in w.stream(
        client.CoreV1Api(api).list_namespaced_pod,
        ns,
        resource_version=created.metadata.resource_version,
        label_selector="job-name=pull-1",
        timeout_seconds=10,
    ):
        state = (event["object"].status.container_statuses or [None])[0]
        if state and state.state.waiting:
            seen.append((state.state.waiting.reason, state.state.waiting.message))
        if seen and seen[-1][0] == "ImagePullBackOff":
            w.stop()
    error = (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": failed to'
        f' resolve reference "{image}": {image}: not found'
    )
    assert seen == [
        ("ErrImagePull", error),
        ("ImagePullBackOff", f'Back-off pulling image "{image}": ErrImagePull: {error}'),
    ]
    [pod] = emulator.list("v1", "pods", ns, label_selector="job-name=pull-1")
    assert pod["status"]["phase"] == "Pending"
    events = client.CoreV1Api(api).list_namespaced_event(
        ns, field_selector=f"involvedObject.uid={pod['metadata']['uid']}"
    )
    assert [(e.type, e.reason, e.message) for e in events.items] == [
        ("Normal", "Pulling", f'Pulling image "{image}"'),
        ("Warning", "Failed", f'Failed to pull image "{image}": {error}'),
        ("Warning", "Failed", "Error: ErrImagePull"),
        ("Normal", "BackOff", f'Back-off pulling image "{image}"'),
        ("Warning", "Failed", "Error: ImagePullBackOff"),
    ]
    running = client.BatchV1Api(api).read_namespaced_job("pull-1", ns)
    assert (running.status.active, running.status.ready) == (1, 0)

    emulator.jobs.release(ns, "pull-1", outcome="fail")  # as its activeDeadlineSeconds would
    failed = client.BatchV1Api(api).read_namespaced_job("pull-1", ns)
    assert [(c.type, c.reason) for c in failed.status.conditions] == [
        ("FailureTarget", "DeadlineExceeded"),
        ("Failed", "DeadlineExceeded"),
    ]
    assert emulator.list("v1", "pods", ns, label_selector="job-name=pull-1") == []


@pytest.mark.kubelet
def test_image_pull_error_says_what_the_registry_said(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    denied = "failed to authorize: 401 Unauthorized"
    emulator.jobs.behave("image-pull-error", labels={"app": "b"}, message=denied)
    body = job("denied")
    body.metadata.labels = {"app": "b"}
    client.BatchV1Api(api).create_namespaced_job(kube.namespace, body)
    [pod] = emulator.list("v1", "pods", kube.namespace, label_selector="job-name=denied")
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"] == {
        "reason": "ImagePullBackOff",
        "message": f'Back-off pulling image "{IMAGE}": ErrImagePull: {denied}',
    }


def test_unschedulable_pod_until_released(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    ns = kube.namespace
    emulator.jobs.behave("unschedulable", name="big")
    client.BatchV1Api(api).create_namespaced_job(ns, job("big"))

    pod = job_pod(api, ns, "big", lambda p: True)
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None and pod.status.container_statuses is None
    [scheduled] = pod.status.conditions
    message = (
        "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available:"
        " 1 No preemption victims found for incoming pod.."
    )
    assert (scheduled.type, scheduled.status, scheduled.reason, scheduled.message) == (
        "PodScheduled",
        "False",
        "Unschedulable",
        message,
    )
    [event] = (
        client.CoreV1Api(api)
        .list_namespaced_event(
            ns, field_selector=f"involvedObject.uid={pod.metadata.uid},source=default-scheduler"
        )
        .items
    )
    assert (event.type, event.reason, event.message) == ("Warning", "FailedScheduling", message)

    emulator.jobs.release(ns, "big")
    assert complete(api, ns, "big").status.succeeded == 1
    assert job_pod(api, ns, "big", lambda p: True).status.phase == "Succeeded"


def test_forbidden_pod_leaves_the_job_without_one(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    ns = kube.namespace
    emulator.jobs.behave("pod-forbidden", name="kaniko-*")
    created = client.BatchV1Api(api).create_namespaced_job(ns, job("kaniko-1"))

    assert emulator.list("v1", "pods", ns, label_selector="job-name=kaniko-1") == []
    started = client.BatchV1Api(api).read_namespaced_job("kaniko-1", ns)
    assert started.status.start_time is not None and not started.status.active
    [event] = (
        client.CoreV1Api(api)
        .list_namespaced_event(
            ns, field_selector=f"involvedObject.uid={created.metadata.uid},reason=FailedCreate"
        )
        .items
    )
    assert (event.type, event.source.component, event.involved_object.kind) == (
        "Warning",
        "job-controller",
        "Job",
    )
    assert re.fullmatch(
        r'Error creating: pods "kaniko-1-[a-z0-9]{5}" is forbidden: violates PodSecurity'
        r' "baseline:latest": privileged \(container "build" must not set'
        r" securityContext.privileged=true\)",
        event.message,
    )

    emulator.jobs.release(ns, "kaniko-1", outcome="fail")
    failed = client.BatchV1Api(api).read_namespaced_job("kaniko-1", ns)
    assert [c.reason for c in failed.status.conditions] == ["DeadlineExceeded"] * 2
    assert failed.status.failed is None


@pytest.mark.kubelet
def test_an_init_container_waiting_for_its_secret_holds_the_main_container(
    api: client.ApiClient, kube: KubeTarget
) -> None:
    """The build pod's shape: an init container with a secretKeyRef runs first; while it
    cannot, the main container waits in PodInitializing and Initialized is False."""
    core, ns = client.CoreV1Api(api), kube.namespace
    token = client.V1EnvVarSource(
        secret_key_ref=client.V1SecretKeySelector(name="git", key="token")
    )
    fetch = client.V1Container(
        name="fetch",
        image=IMAGE,
        command=["true"],
        env=[client.V1EnvVar(name="GIT_TOKEN", value_from=token)],
    )
    manifest = job("init")
    manifest.spec.template.spec.init_containers = [fetch]
    client.BatchV1Api(api).create_namespaced_job(ns, manifest)

    def init_waiting(p: Any) -> bool:
        statuses = p.status.init_container_statuses or []
        return any(
            s.state.waiting and s.state.waiting.reason == "CreateContainerConfigError"
            for s in statuses
        )

    pod = job_pod(api, ns, "init", init_waiting)
    assert pod.status.phase == "Pending"
    [init] = pod.status.init_container_statuses
    assert init.state.waiting.message == 'secret "git" not found'
    [main] = pod.status.container_statuses
    assert main.state.waiting.reason == "PodInitializing"
    initialized = next(c for c in pod.status.conditions if c.type == "Initialized")
    assert (initialized.status, initialized.reason) == ("False", "ContainersNotInitialized")
    failed = event_about(api, ns, pod.metadata.uid, "Failed", 'Error: secret "git" not found')
    assert failed.involved_object.field_path == "spec.initContainers{fetch}"

    core.create_namespaced_secret(ns, secret("git", token="t"))
    done = complete(api, ns, "init")
    assert done.status.succeeded == 1
    pod = job_pod(api, ns, "init", lambda p: p.status.phase == "Succeeded")
    [init] = pod.status.init_container_statuses
    assert (init.state.terminated.exit_code, init.state.terminated.reason) == (0, "Completed")


def test_an_init_container_that_fails_fails_the_pod_before_the_main_one_runs(
    api: client.ApiClient, emulator: Emulator, kube: KubeTarget
) -> None:
    ns = kube.namespace
    emulator.jobs.behave(
        "init-fail", name="fetch-*", exit_code=3, termination_message="GitHub is unreachable"
    )
    manifest = job("fetch-fails")
    fetch = client.V1Container(name="fetch", image=IMAGE, command=["false"])
    manifest.spec.template.spec.init_containers = [fetch]
    client.BatchV1Api(api).create_namespaced_job(ns, manifest)

    pod = job_pod(api, ns, "fetch-fails", lambda p: p.status.phase == "Failed")
    [init] = pod.status.init_container_statuses
    assert init.state.terminated.exit_code == 3
    assert init.state.terminated.message == "GitHub is unreachable"
    [main] = pod.status.container_statuses
    assert main.state.waiting.reason == "PodInitializing" and not main.started
