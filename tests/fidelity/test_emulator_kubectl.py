"""Real kubectl against the Kubernetes API: get, apply, create job --from=cronjob, delete."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube_emulator import Emulator
from tests.support.kube_target import KubeTarget

CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  labels: {app: ci-runner}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          serviceAccountName: runner
          securityContext: {runAsNonRoot: true, runAsUser: 1000}
          volumes:
            - name: docker
              secret: {secretName: registry, defaultMode: 256}
            - name: scratch
              emptyDir: {}
          containers:
            - name: run
              image: registry.example/runner:1.0
              args: ["cycle"]
              env:
                - name: GIT_TOKEN
                  valueFrom: {secretKeyRef: {name: git, key: token}}
                - name: LEVEL
                  value: debug
              envFrom:
                - configMapRef: {name: settings}
              ports:
                - {containerPort: 8080, name: http}
              resources:
                requests: {cpu: 100m, memory: 64Mi}
                limits: {memory: 1Gi}
              readinessProbe:
                httpGet: {path: /healthz, port: http}
                periodSeconds: 5
              volumeMounts:
                - {name: docker, mountPath: /kaniko/.docker, readOnly: true}
"""


def kubectl(bin_: str, kube: KubeTarget, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [bin_, "--namespace", kube.namespace, *args],
        env=kube.env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def get_json(bin_: str, kube: KubeTarget, *args: str) -> Any:
    return json.loads(kubectl(bin_, kube, "get", *args, "--output", "json"))


def configmap(name: str, **data: str) -> str:
    return json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    )


def test_apply_creates_then_patches(kubectl_bin: str, kube: KubeTarget, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.json"
    manifest.write_text(configmap("settings", a="1", b="2"))
    assert "configmap/settings created" in kubectl(kubectl_bin, kube, "apply", "-f", str(manifest))
    first = get_json(kubectl_bin, kube, "configmap", "settings")

    manifest.write_text(configmap("settings", a="1", c="3"))
    assert "configmap/settings configured" in kubectl(
        kubectl_bin, kube, "apply", "-f", str(manifest)
    )
    second = get_json(kubectl_bin, kube, "configmap", "settings")
    assert second["data"] == {"a": "1", "c": "3"}
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])

    assert "unchanged" in kubectl(kubectl_bin, kube, "apply", "-f", str(manifest))


def test_get_lists_by_label_and_name(kubectl_bin: str, kube: KubeTarget) -> None:
    for name, team in (("one", "red"), ("two", "blue")):
        kubectl(kubectl_bin, kube, "create", "configmap", name, "--from-literal=k=v")
        kubectl(kubectl_bin, kube, "label", "configmap", name, f"team={team}")
    listed = get_json(kubectl_bin, kube, "configmaps", "-l", "team=blue")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["two"]
    names = kubectl(kubectl_bin, kube, "get", "configmaps", "-l", "team", "-o", "name")
    assert names.split() == ["configmap/one", "configmap/two"]
    table = kubectl(kubectl_bin, kube, "get", "configmap", "one")
    assert table.split()[:2] == ["NAME", "DATA"] or table.split()[0] == "NAME"
    assert "one" in table


def test_create_job_from_cronjob(kubectl_bin: str, kube: KubeTarget) -> None:
    kubectl(kubectl_bin, kube, "apply", "-f", "-", stdin=CRONJOB)
    out = kubectl(kubectl_bin, kube, "create", "job", "manual-1", "--from=cronjob/nightly")
    assert "job.batch/manual-1 created" in out

    job = get_json(kubectl_bin, kube, "job", "manual-1")
    cronjob = get_json(kubectl_bin, kube, "cronjob", "nightly")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    [owner] = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("CronJob", cronjob["metadata"]["uid"])
    # kubectl sends the Job as protobuf: it must come back as the CronJob's template
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert job["spec"]["template"]["spec"] == template["spec"]


def create_what_the_cronjob_needs(bin_: str, kube: KubeTarget) -> None:
    """The Secrets and ConfigMap its pod references: without them it would never start."""
    kubectl(bin_, kube, "create", "secret", "generic", "git", "--from-literal=token=t")
    kubectl(bin_, kube, "create", "secret", "generic", "registry", "--from-literal=config.json={}")
    kubectl(bin_, kube, "create", "configmap", "settings", "--from-literal=MODE=test")


def test_job_from_cronjob_runs_its_pod(
    kubectl_bin: str, kube: KubeTarget, emulator: Emulator
) -> None:
    emulator.jobs.behave("succeed", name="manual-*", log="cycle done\n")
    create_what_the_cronjob_needs(kubectl_bin, kube)
    kubectl(kubectl_bin, kube, "apply", "-f", "-", stdin=CRONJOB)
    kubectl(kubectl_bin, kube, "create", "job", "manual-2", "--from=cronjob/nightly")
    kubectl(kubectl_bin, kube, "wait", "--for=condition=complete", "job/manual-2", "--timeout=60s")
    pods = get_json(kubectl_bin, kube, "pods", "-l", "batch.kubernetes.io/job-name=manual-2")
    [pod] = pods["items"]
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["metadata"]["labels"]["job-name"] == "manual-2"
    assert kubectl(kubectl_bin, kube, "logs", "job/manual-2") == "cycle done\n"


def test_delete_job_removes_its_pods(
    kubectl_bin: str, kube: KubeTarget, emulator: Emulator
) -> None:
    create_what_the_cronjob_needs(kubectl_bin, kube)
    kubectl(kubectl_bin, kube, "apply", "-f", "-", stdin=CRONJOB)
    kubectl(kubectl_bin, kube, "create", "job", "gone", "--from=cronjob/nightly")
    kubectl(kubectl_bin, kube, "wait", "--for=condition=complete", "job/gone", "--timeout=60s")
    assert get_json(kubectl_bin, kube, "pods", "-l", "job-name=gone")["items"]

    kubectl(kubectl_bin, kube, "delete", "job", "gone", "--wait=true", "--timeout=60s")
    kubectl(
        kubectl_bin, kube, "wait", "--for=delete", "pods", "-l", "job-name=gone", "--timeout=60s"
    )
    assert get_json(kubectl_bin, kube, "pods", "-l", "job-name=gone")["items"] == []


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
        - name: sidecar
          image: busybox:1
"""


def test_patch_types(kubectl_bin: str, kube: KubeTarget) -> None:
    kubectl(kubectl_bin, kube, "apply", "-f", "-", stdin=DEPLOYMENT)
    strategic = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:2", "env": [{"name": "C", "value": "3"}]},
                        {"name": "sidecar", "$patch": "delete"},
                    ]
                }
            }
        }
    }
    kubectl(kubectl_bin, kube, "patch", "deployment", "web", "-p", json.dumps(strategic))
    deployment = get_json(kubectl_bin, kube, "deployment", "web")
    [web] = deployment["spec"]["template"]["spec"]["containers"]
    assert web["image"] == "nginx:2"
    assert [e["name"] for e in web["env"]] == ["C", "A", "B"]  # new items first, as the real one
    assert deployment["metadata"]["generation"] == 2

    json_patch = [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    kubectl(
        kubectl_bin, kube, "patch", "deployment", "web", "--type=json", "-p", json.dumps(json_patch)
    )
    merge = {"metadata": {"labels": {"tier": "front"}}}
    kubectl(
        kubectl_bin, kube, "patch", "deployment", "web", "--type=merge", "-p", json.dumps(merge)
    )
    deployment = get_json(kubectl_bin, kube, "deployment", "web")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["labels"] == {"tier": "front"}


def test_rollout_status(kubectl_bin: str, kube: KubeTarget, emulator: Emulator) -> None:
    kubectl(kubectl_bin, kube, "apply", "-f", "-", stdin=DEPLOYMENT)
    out = kubectl(kubectl_bin, kube, "rollout", "status", "deployment/web", "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in out
    deployment = get_json(kubectl_bin, kube, "deployment", "web")
    assert deployment["status"]["observedGeneration"] == deployment["metadata"]["generation"]


def test_cluster_scoped_get(kubectl_bin: str, kube: KubeTarget) -> None:
    nodes = get_json(kubectl_bin, kube, "nodes")
    assert nodes["items"]
    ready = [c for c in nodes["items"][0]["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    namespace = get_json(kubectl_bin, kube, "namespace", kube.namespace)
    assert namespace["status"]["phase"] == "Active"
    assert namespace["metadata"]["labels"]["kubernetes.io/metadata.name"] == kube.namespace


def event(name: str, involved: dict[str, str], message: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name},
            "involvedObject": involved,
            "reason": "Deployed",
            "message": message,
            "type": "Normal",
            "source": {"component": "ci-runner"},
            "firstTimestamp": "2026-01-02T03:04:05Z",
            "lastTimestamp": "2026-01-02T03:04:05Z",
            "count": 1,
        }
    )


def test_describe_shows_the_events_of_that_very_object(kubectl_bin: str, kube: KubeTarget) -> None:
    kubectl(kubectl_bin, kube, "create", "configmap", "state", "--from-literal=k=v")
    uid = get_json(kubectl_bin, kube, "configmap", "state")["metadata"]["uid"]
    about = {"apiVersion": "v1", "kind": "ConfigMap", "name": "state", "namespace": kube.namespace}
    kubectl(kubectl_bin, kube, "create", "-f", "-", stdin=event("a", {**about, "uid": uid}, "ours"))
    # Same kind, namespace and name but no uid: an Event about an earlier object of that name.
    kubectl(kubectl_bin, kube, "create", "-f", "-", stdin=event("b", about, "not-ours"))

    if kube.emulator is not None:
        kube.emulator.clear_requests()
    described = kubectl(kubectl_bin, kube, "describe", "configmap", "state")

    events = described.split("Events:", 1)[1]
    assert "Deployed" in events and "ours" in events
    assert "not-ours" not in events
    if kube.emulator is not None:
        # What kubectl's describe sends (describe.go searchEvents, client-go's GetFieldSelector,
        # a Go map: in any order): the uid as well as kind, name and namespace.
        [search] = [r for r in kube.emulator.requests if r.resource == "events"]
        assert sorted(search.query["fieldSelector"].split(",")) == [
            "involvedObject.kind=ConfigMap",
            "involvedObject.name=state",
            f"involvedObject.namespace={kube.namespace}",
            f"involvedObject.uid={uid}",
        ]
        assert (search.verb, search.namespace, search.status) == ("list", kube.namespace, 200)


def test_describe_tells_why_a_job_has_no_pod_and_why_a_pod_waits(
    kubectl_bin: str, kube: KubeTarget, emulator: Emulator
) -> None:
    emulator.jobs.behave("pod-forbidden", name="manual-forbidden")
    emulator.jobs.behave("image-pull-error", name="manual-pull")
    kubectl(kubectl_bin, kube, "apply", "-f", "-", stdin=CRONJOB)
    for name in ("manual-forbidden", "manual-pull"):
        kubectl(kubectl_bin, kube, "create", "job", name, "--from=cronjob/nightly")

    job = kubectl(kubectl_bin, kube, "describe", "job", "manual-forbidden")
    events = job.split("Events:", 1)[1]
    assert re.search(r"Warning\s+FailedCreate\s+.*job-controller\s+Error creating: pods", events)
    assert 'violates PodSecurity "baseline:latest"' in events

    create_what_the_cronjob_needs(kubectl_bin, kube)  # else the mount fails before the pull
    pod = kubectl(kubectl_bin, kube, "describe", "pod", "-l", "job-name=manual-pull")
    assert re.search(r"State:\s+Waiting\s+Reason:\s+ImagePullBackOff", pod)
    events = pod.split("Events:", 1)[1]
    assert re.search(r"Normal\s+BackOff\s+.*kubelet\s+.*Back-off pulling image", events)
    assert "Error: ImagePullBackOff" in events
