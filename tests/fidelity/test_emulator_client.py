"""The kubernetes Python client against the Kubernetes API: optimistic concurrency, Leases,
Events, Secrets, selectors, watches, and (emulator only) Jobs run by the emulator's rules."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.support.kube_emulator import Emulator
from tests.support.kube_target import KubeTarget


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or None
    )


def job(name: str, labels: dict[str, str] | None = None) -> client.V1Job:
    container = client.V1Container(name="build", image="registry.example/kaniko:1", args=["go"])
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(restart_policy="Never", containers=[container])
            ),
        ),
    )


def condition(obj: client.V1Job, kind: str) -> Any:
    return next((c for c in obj.status.conditions or [] if c.type == kind), None)


def watch_job_until_finished(api: client.ApiClient, namespace: str, name: str) -> client.V1Job:
    """Watch one Job (by field selector) until it is Complete or Failed."""
    batch = client.BatchV1Api(api)
    w = watch.Watch()
    try:
        for event in w.stream(
            batch.list_namespaced_job,
            namespace,
            field_selector=f"metadata.name={name}",
            timeout_seconds=30,
        ):
            obj = event["object"]
            if condition(obj, "Complete") or condition(obj, "Failed"):
                return obj
    finally:
        w.stop()
    pytest.fail(f"Job {name} did not finish")


def job_pod(api: client.ApiClient, namespace: str, name: str) -> client.V1Pod:
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"batch.kubernetes.io/job-name={name}"
    )
    [pod] = pods.items
    return pod


# ---- works against any API server ---------------------------------------------------------------


def test_configmap_stale_write_conflicts(api: client.ApiClient, kube: KubeTarget) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(kube.namespace, configmap("state", sha="a"))
    assert created.metadata.uid and created.metadata.creation_timestamp

    created.data = {"sha": "b"}
    updated = core.replace_namespaced_config_map("state", kube.namespace, created)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)

    created.data = {"sha": "c"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("state", kube.namespace, created)
    assert stale.value.status == 409
    assert json.loads(stale.value.body)["reason"] == "Conflict"

    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(kube.namespace, configmap("state"))
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"
    assert core.read_namespaced_config_map("state", kube.namespace).data == {"sha": "b"}


def test_missing_objects_and_namespaces_are_404(api: client.ApiClient, kube: KubeTarget) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("nothing", kube.namespace)
    assert missing.value.status == 404
    body = json.loads(missing.value.body)
    assert (body["kind"], body["reason"]) == ("Status", "NotFound")
    with pytest.raises(ApiException) as no_namespace:
        core.create_namespaced_config_map(f"{kube.namespace}-absent", configmap("x"))
    assert no_namespace.value.status == 404


def test_patches(api: client.ApiClient, kube: KubeTarget) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(kube.namespace, configmap("p", {"a": "1"}, x="1", y="2"))
    core.patch_namespaced_config_map("p", kube.namespace, {"data": {"y": None, "z": "3"}})
    merged = core.patch_namespaced_config_map(
        "p",
        kube.namespace,
        {"metadata": {"labels": {"b": "2"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.data == {"x": "1", "z": "3"}
    assert merged.metadata.labels == {"a": "1", "b": "2"}
    patched = core.patch_namespaced_config_map(
        "p",
        kube.namespace,
        [{"op": "replace", "path": "/data/x", "value": "9"}],
        _content_type="application/json-patch+json",
    )
    assert patched.data == {"x": "9", "z": "3"}


def test_lease_create_and_stale_replace(api: client.ApiClient, kube: KubeTarget) -> None:
    leases = client.CoordinationV1Api(api)
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="ci-runner"),
        spec=client.V1LeaseSpec(
            holder_identity="pod-a",
            lease_duration_seconds=60,
            acquire_time=moment,
            renew_time=moment,
        ),
    )
    created = leases.create_namespaced_lease(kube.namespace, lease)
    assert created.spec.renew_time == moment
    created.spec.holder_identity = "pod-b"
    leases.replace_namespaced_lease("ci-runner", kube.namespace, created)
    created.spec.holder_identity = "pod-c"
    with pytest.raises(ApiException) as stale:
        leases.replace_namespaced_lease("ci-runner", kube.namespace, created)
    assert stale.value.status == 409
    assert leases.read_namespaced_lease("ci-runner", kube.namespace).spec.holder_identity == "pod-b"


def test_lease_time_needs_six_fractional_digits(api: client.ApiClient, kube: KubeTarget) -> None:
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "bad-time"},
        "spec": {"holderIdentity": "a", "renewTime": "2026-01-02T03:04:05Z"},
    }
    with pytest.raises(ApiException) as bad:
        client.CoordinationV1Api(api).create_namespaced_lease(kube.namespace, body)
    assert bad.value.status == 400


def test_events_in_both_apis(api: client.ApiClient, kube: KubeTarget) -> None:
    core = client.CoreV1Api(api)
    target = client.V1ObjectReference(kind="ConfigMap", name="state", namespace=kube.namespace)
    core.create_namespaced_event(
        kube.namespace,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="state.1"),
            involved_object=target,
            reason="Deployed",
            message="deployed abc",
            type="Normal",
        ),
    )
    core.create_namespaced_event(
        kube.namespace,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="other.1"),
            involved_object=client.V1ObjectReference(
                kind="Pod", name="other", namespace=kube.namespace
            ),
            reason="Other",
            message="x",
            type="Normal",
        ),
    )
    listed = core.list_namespaced_event(kube.namespace, field_selector="involvedObject.name=state")
    assert [(e.reason, e.message) for e in listed.items] == [("Deployed", "deployed abc")]
    with pytest.raises(ApiException) as elsewhere:
        core.create_namespaced_event(
            kube.namespace,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(name="elsewhere.1"),
                involved_object=client.V1ObjectReference(
                    kind="Pod", name="p", namespace="kube-system"
                ),
                reason="Other", message="x", type="Normal",
            ),
        )  # fmt: skip
    assert elsewhere.value.status == 422

    events = client.EventsV1Api(api)
    events.create_namespaced_event(
        kube.namespace,
        client.EventsV1Event(
            metadata=client.V1ObjectMeta(name="state.2"),
            event_time=dt.datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=dt.UTC),
            action="Deploy",
            reason="Deployed",
            note="deployed def",
            type="Normal",
            reporting_controller="ci-runner",
            reporting_instance="ci-runner-1",
            regarding=target,
        ),
    )
    read = events.read_namespaced_event("state.2", kube.namespace)
    assert (read.note, read.regarding.name) == ("deployed def", "state")


STAMP = dt.datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=dt.UTC)


def test_event_field_selectors(api: client.ApiClient, kube: KubeTarget) -> None:
    core = client.CoreV1Api(api)
    ns = kube.namespace

    def about(uid: str, field_path: str | None = None) -> client.V1ObjectReference:
        return client.V1ObjectReference(
            api_version="v1", kind="Pod", name="p", namespace=ns, uid=uid, field_path=field_path
        )

    for name, involved, reason, kind, source, reporting in (
        ("by-kubelet", about("u1", "spec.containers{app}"), "Failed", "Warning", "kubelet", None),
        ("by-scheduler", about("u2"), "FailedScheduling", "Warning", None, "default-scheduler"),
        ("by-runner", about("u1"), "Deployed", "Normal", "ci-runner", None),
    ):
        core.create_namespaced_event(
            ns,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(name=name),
                involved_object=involved,
                reason=reason,
                message="m",
                type=kind,
                source=client.V1EventSource(component=source) if source else None,
                reporting_component=reporting,
                reporting_instance="default-scheduler-1" if reporting else None,
                event_time=STAMP if reporting else None,
                action="Scheduling" if reporting else None,
            ),
        )

    def names(selector: str) -> list[str]:
        found = core.list_namespaced_event(ns, field_selector=selector).items
        return sorted(e.metadata.name for e in found)

    assert names("involvedObject.uid=u1") == ["by-kubelet", "by-runner"]
    assert names("involvedObject.uid=u1,involvedObject.kind=Pod,involvedObject.name=p") == [
        "by-kubelet",
        "by-runner",
    ]
    assert names("involvedObject.fieldPath=spec.containers{app}") == ["by-kubelet"]
    assert names(f"involvedObject.namespace={ns},involvedObject.apiVersion=v1,reason!=Failed") == [
        "by-runner",
        "by-scheduler",
    ]
    assert names("type=Warning") == ["by-kubelet", "by-scheduler"]
    # "source" is source.component, or reportingComponent when there is none (strategy.go)
    assert names("source=kubelet") == ["by-kubelet"]
    assert names("source=default-scheduler") == ["by-scheduler"]
    assert names("reportingComponent=default-scheduler") == ["by-scheduler"]
    with pytest.raises(ApiException) as unsupported:
        core.list_namespaced_event(ns, field_selector="message=m")
    assert unsupported.value.status == 400
    assert "field label not supported: message" in unsupported.value.body


def test_secrets_and_string_data(api: client.ApiClient, kube: KubeTarget) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="token"),
            string_data={"token": "s3cret"},
            data={"raw": "AAE="},
        ),
    )
    secret = core.read_namespaced_secret("token", kube.namespace)
    assert secret.type == "Opaque"
    assert secret.data == {"raw": "AAE=", "token": "czNjcmV0"}
    assert secret.string_data is None


def test_label_and_field_selectors(api: client.ApiClient, kube: KubeTarget) -> None:
    core = client.CoreV1Api(api)
    for name, labels in (
        ("a", {"app": "x", "tier": "web"}),
        ("b", {"app": "x", "tier": "db"}),
        ("c", {"app": "y"}),
    ):
        core.create_namespaced_config_map(kube.namespace, configmap(name, labels))

    def names(**kwargs: str) -> list[str]:
        found = core.list_namespaced_config_map(kube.namespace, **kwargs).items
        return sorted(cm.metadata.name for cm in found if cm.metadata.name in {"a", "b", "c"})

    assert names(label_selector="app=x") == ["a", "b"]
    assert names(label_selector="app=x,tier!=db") == ["a"]
    assert names(label_selector="tier in (db,cache)") == ["b"]
    assert names(label_selector="app,!tier") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector=f"metadata.namespace={kube.namespace},metadata.name!=a") == [
        "b",
        "c",
    ]

    deleted = core.delete_collection_namespaced_config_map(kube.namespace, label_selector="app=x")
    assert deleted is not None
    assert names() == ["c"]


def test_watch_replays_from_a_resource_version(api: client.ApiClient, kube: KubeTarget) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(kube.namespace, configmap("w", v="1"))
    core.patch_namespaced_config_map("w", kube.namespace, {"data": {"v": "2"}})
    core.delete_namespaced_config_map("w", kube.namespace)

    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_config_map,
        kube.namespace,
        resource_version=created.metadata.resource_version,
        field_selector="metadata.name=w",  # a real cluster adds kube-root-ca.crt meanwhile
        timeout_seconds=5,
    ):
        seen.append((event["type"], event["object"].data))
        if event["type"] == "DELETED":
            w.stop()
    assert seen == [("MODIFIED", {"v": "2"}), ("DELETED", {"v": "2"})]


def test_watch_list_ends_initial_events_with_a_bookmark(
    api: client.ApiClient, kube: KubeTarget
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(kube.namespace, configmap("one"))
    method, url, headers, _, _ = api.param_serialize(
        "GET",
        f"/api/v1/namespaces/{kube.namespace}/configmaps",
        query_params=[
            ("watch", "true"),
            ("sendInitialEvents", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersionMatch", "NotOlderThan"),
            ("timeoutSeconds", "1"),
        ],
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=headers, _request_timeout=30)
    with response:
        data = response.read()
    events = [json.loads(line) for line in data.splitlines() if line.strip()]
    added = [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"]
    assert "one" in added
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks
    annotations = bookmarks[0]["object"]["metadata"]["annotations"]
    assert annotations["k8s.io/initial-events-end"] == "true"
    # The bookmark ends what existed when the watch began; an object created later (on a real
    # cluster, the kube-root-ca.crt the controller-manager publishes into a new namespace, at
    # its own pace) may come after it as a live ADDED event.
    ours = next(i for i, e in enumerate(events) if e["object"]["metadata"].get("name") == "one")
    assert events.index(bookmarks[0]) > ours


# ---- emulator only: Jobs run by rules, faults, the request log -------------------------------


def test_job_completes_with_pod_log_and_message(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    emulator.jobs.behave(
        "succeed", name="build-*", log="step 1\nstep 2\n", termination_message="sha256:abc"
    )
    created = client.BatchV1Api(api).create_namespaced_job(kube.namespace, job("build-1"))
    assert created.spec.completions == 1 and created.spec.backoff_limit == 0

    finished = watch_job_until_finished(api, kube.namespace, "build-1")
    assert finished.status.succeeded == 1
    assert condition(finished, "SuccessCriteriaMet").status == "True"
    assert finished.status.completion_time is not None

    pod = job_pod(api, kube.namespace, "build-1")
    assert re.fullmatch(r"build-1-[a-z0-9]{5}", pod.metadata.name)
    assert pod.metadata.labels["job-name"] == "build-1"
    assert pod.metadata.labels["controller-uid"] == created.metadata.uid
    assert pod.metadata.owner_references[0].uid == created.metadata.uid
    assert pod.spec.containers[0].args == ["go"]
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.message) == (0, "sha256:abc")
    log = client.CoreV1Api(api).read_namespaced_pod_log(pod.metadata.name, kube.namespace)
    assert log == "step 1\nstep 2\n"


def test_job_fails_with_reason_and_message(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    emulator.jobs.behave("fail", labels={"kind": "build"}, termination_message="no Dockerfile")
    client.BatchV1Api(api).create_namespaced_job(kube.namespace, job("b", {"kind": "build"}))

    finished = watch_job_until_finished(api, kube.namespace, "b")
    assert finished.status.failed == 1
    assert condition(finished, "FailureTarget").reason == "BackoffLimitExceeded"
    assert condition(finished, "Failed").reason == "BackoffLimitExceeded"
    assert condition(finished, "Complete") is None
    pod = job_pod(api, kube.namespace, "b")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.message) == (1, "no Dockerfile")
    failed_pods = client.CoreV1Api(api).list_namespaced_pod(
        kube.namespace, field_selector="status.phase=Failed"
    )
    assert [p.metadata.name for p in failed_pods.items] == [pod.metadata.name]


def test_held_job_runs_until_released(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    emulator.jobs.behave("hold", namespace=kube.namespace)
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(kube.namespace, job("slow"))
    running = batch.read_namespaced_job("slow", kube.namespace)
    assert (running.status.active, running.status.ready) == (1, 1)
    pod = job_pod(api, kube.namespace, "slow")
    assert pod.status.phase == "Running"
    assert pod.status.container_statuses[0].ready

    emulator.jobs.release(kube.namespace, "slow", outcome="fail")
    finished = watch_job_until_finished(api, kube.namespace, "slow")
    assert condition(finished, "Failed") is not None
    assert finished.status.active == 0


def test_deleting_a_job_in_background_removes_its_pods(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(kube.namespace, job("gone"))
    batch.create_namespaced_job(kube.namespace, job("orphan"))
    batch.delete_namespaced_job("gone", kube.namespace, propagation_policy="Background")
    batch.delete_namespaced_job("orphan", kube.namespace)  # the API's default for Jobs: orphan
    pods = emulator.list("v1", "pods", kube.namespace)
    assert [p["metadata"]["labels"]["job-name"] for p in pods] == ["orphan"]
    assert "ownerReferences" not in pods[0]["metadata"]


def test_deployment_gets_ready(api: client.ApiClient, kube: KubeTarget, emulator: Emulator) -> None:
    container = client.V1Container(name="web", image="nginx:1")
    client.AppsV1Api(api).create_namespaced_deployment(
        kube.namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels={"app": "web"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "web"}),
                    spec=client.V1PodSpec(containers=[container]),
                ),
            ),
        ),
    )
    deployment = client.AppsV1Api(api).read_namespaced_deployment("web", kube.namespace)
    status = deployment.status
    assert status.observed_generation == deployment.metadata.generation == 1
    assert (status.replicas, status.ready_replicas, status.available_replicas) == (2, 2, 2)
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    assert progressing.reason == "NewReplicaSetAvailable"
    [replica_set] = emulator.list("apps/v1", "replicasets", kube.namespace, "app=web")
    assert replica_set["status"]["readyReplicas"] == 2


def test_injected_faults(api: client.ApiClient, kube: KubeTarget, emulator: Emulator) -> None:
    core = client.CoreV1Api(api)
    emulator.faults.add("POST", r"/configmaps$", 409)
    emulator.faults.add("GET", r"/configmaps/state$", 500, body={"message": "etcd is sad"})
    with pytest.raises(ApiException) as conflict:
        core.create_namespaced_config_map(kube.namespace, configmap("state"))
    assert conflict.value.status == 409
    core.create_namespaced_config_map(kube.namespace, configmap("state"))  # used up
    with pytest.raises(ApiException) as broken:
        core.read_namespaced_config_map("state", kube.namespace)
    assert broken.value.status == 500
    assert json.loads(broken.value.body)["message"] == "etcd is sad"
    assert core.read_namespaced_config_map("state", kube.namespace).metadata.name == "state"


def test_hanging_request_fires_the_client_timeout(kube: KubeTarget, emulator: Emulator) -> None:
    import urllib3

    emulator.faults.add("GET", r"/configmaps/slow$", "hang")
    configuration = client.Configuration()
    config.load_kube_config(config_file=kube.kubeconfig, client_configuration=configuration)
    configuration.retries = False
    with (
        client.ApiClient(configuration) as api,
        pytest.raises(urllib3.exceptions.ReadTimeoutError),
    ):
        client.CoreV1Api(api).read_namespaced_config_map(
            "slow", kube.namespace, _request_timeout=0.5
        )
    [record] = [r for r in emulator.requests if r.name == "slow"]
    assert record.status == 0


def test_request_log(api: client.ApiClient, kube: KubeTarget, emulator: Emulator) -> None:
    core = client.CoreV1Api(api)
    emulator.clear_requests()
    core.create_namespaced_config_map(kube.namespace, configmap("logged"))
    core.list_namespaced_config_map(kube.namespace, label_selector="a=b")
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("absent", kube.namespace)
    core.patch_namespaced_config_map("logged", kube.namespace, {"data": {"a": "b"}})
    core.delete_namespaced_config_map("logged", kube.namespace)
    records = emulator.requests
    assert [(r.verb, r.status, r.name) for r in records] == [
        ("create", 201, None),
        ("list", 200, None),
        ("get", 404, "absent"),
        ("patch", 200, "logged"),
        ("delete", 200, "logged"),
    ]
    first = records[0]
    assert (first.method, first.api_group, first.api_version, first.resource) == (
        "POST",
        "",
        "v1",
        "configmaps",
    )
    assert first.namespace == kube.namespace
    assert records[3].content_type == "application/strategic-merge-patch+json"
    assert "OpenAPI-Generator" in first.user_agent
    assert records[1].query == {"labelSelector": "a=b"}


def test_seeding_and_reading_without_http(emulator: Emulator, kube: KubeTarget) -> None:
    emulator.clear_requests()
    stored = emulator.put(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": kube.namespace},
            "spec": {
                "schedule": "@daily",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "c", "image": "i"}],
                            }
                        }
                    }
                },
            },
        }
    )
    assert stored["metadata"]["uid"] and stored["metadata"]["resourceVersion"]
    assert emulator.get("batch/v1", "CronJob", kube.namespace, "nightly") == stored
    assert [c["metadata"]["name"] for c in emulator.list("batch/v1", "cronjobs")] == ["nightly"]
    assert emulator.requests == []


def test_protobuf_of_an_unknown_kind_is_415(emulator: Emulator, kube: KubeTarget) -> None:
    import requests

    envelope = b"k8s\x00" + bytes([0x0A, 0x0A, 0x0A, 0x02]) + b"v1" + bytes([0x12, 0x04])
    envelope += b"Nope"
    with requests.Session() as session:
        response = session.post(
            f"{emulator.url}/api/v1/namespaces/{kube.namespace}/configmaps",
            data=envelope,
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
            timeout=10,
        )
    assert response.status_code == 415
    assert "cannot decode protobuf v1 Nope" in response.json()["message"]


def test_server_dry_run_stores_nothing(api: client.ApiClient, kube: KubeTarget) -> None:
    core = client.CoreV1Api(api)
    answer = core.create_namespaced_config_map(
        kube.namespace, configmap("dry", a="1"), dry_run="All"
    )
    assert answer.data == {"a": "1"}
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("dry", kube.namespace)
    assert missing.value.status == 404


def test_stop_ends_open_watches(kube: KubeTarget, emulator: Emulator) -> None:
    import threading

    import requests

    lines: list[bytes] = []
    opened = threading.Event()

    def watch_forever() -> None:
        with (
            requests.Session() as session,
            session.get(
                f"{emulator.url}/api/v1/namespaces/{kube.namespace}/configmaps"
                "?watch=1&fieldSelector=metadata.name%3Da",
                stream=True,
                timeout=30,
            ) as response,
        ):
            opened.set()
            lines.extend(response.iter_lines())

    emulator.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": kube.namespace},
        }
    )
    watcher = threading.Thread(target=watch_forever)
    watcher.start()
    assert opened.wait(10)
    emulator.stop()
    watcher.join(10)
    assert not watcher.is_alive()
    assert [json.loads(line)["type"] for line in lines] == ["ADDED"]


def test_deleting_a_namespace_deletes_its_objects(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="doomed")))
    core.create_namespaced_config_map("doomed", configmap("x"))
    core.delete_namespace("doomed")
    assert emulator.get("v1", "namespaces", None, "doomed") is None
    assert emulator.list("v1", "configmaps", "doomed") == []


def test_filtered_watch_sees_objects_enter_and_leave(
    api: client.ApiClient, kube: KubeTarget, emulator: Emulator
) -> None:
    emulator.jobs.behave("hold", name="phased")
    client.BatchV1Api(api).create_namespaced_job(kube.namespace, job("phased"))
    core = client.CoreV1Api(api)
    pod = job_pod(api, kube.namespace, "phased")
    emulator.jobs.release(kube.namespace, "phased")
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_pod,
        kube.namespace,
        field_selector="status.phase=Running",
        resource_version=pod.metadata.resource_version,
        timeout_seconds=5,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        w.stop()
    assert seen == [("DELETED", pod.metadata.name)]  # it left the selection: no longer Running
    watches = [r for r in emulator.requests if r.verb == "watch"]
    assert [(r.resource, r.status, r.query["fieldSelector"]) for r in watches] == [
        ("pods", 200, "status.phase=Running")
    ]
