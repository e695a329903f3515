"""The unhappy paths a real cluster has on an ordinary day: each ends quickly, with the
documented exit code, a clear line, and state the next run can trust."""

from __future__ import annotations

import base64
import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.appkit import APP_FILES, BUILD, IMAGE, RELEASE, App

WRITES = {"create", "update", "patch", "delete", "deletecollection"}

VALUES_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-settings}
data:
  settings: {{ toJson .Values.settings | quote }}
"""


@pytest.mark.helm
def test_values_files_are_layered_exactly_as_helm_layers_them(app: App, tmp_path: Path) -> None:
    files = {
        **APP_FILES,
        "deploy/chart/values.yaml": (
            "image: {repository: nginx, tag: latest}\n"
            "settings: {hosts: [a, b], replicas: 1, debug: true, nested: {x: 1, w: 2}}\n"
        ),
        "deploy/chart/templates/settings.yaml": VALUES_CONFIGMAP,
        # A list replaces (never concatenates), a null removes the chart's default.
        "deploy/chart/values-a.yaml": "settings: {hosts: [c], debug: null, nested: {w: 3}}\n",
        # YAML as helm reads it (go-yaml v2): y and on are true, a date stays a string.
        "deploy/chart/values-b.yaml": (
            "settings: {replicas: 2, nested: {z: 4}, flags: [y, n, on, off, yes],"
            " since: 2026-01-01, mode: 0755, time: '1:20', hex: 0x1F}\n"
        ),
    }
    sha = app.push(files)
    done = app.run(VALUES_FILES="values-a.yaml,values-b.yaml")
    assert done.code == 0, done.output

    chart = tmp_path / "chart"
    for name, text in files.items():
        if name.startswith("deploy/chart/"):
            path = chart / name.removeprefix("deploy/chart/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    template = subprocess.run(
        ["helm", "template", RELEASE, str(chart), "-f", str(chart / "values-a.yaml"),
         "-f", str(chart / "values-b.yaml"), "--set", f"image.repository={IMAGE}",
         "--set", f"image.tag={sha}"],
        env=app.env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    deployed = subprocess.run(
        ["helm", "get", "manifest", RELEASE, "--namespace", app.deploy_ns],
        env=app.env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def settings(manifest: str) -> Any:
        docs = [d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "ConfigMap"]
        return json.loads(docs[0]["data"]["settings"])

    assert settings(deployed) == settings(template)
    assert settings(deployed)["hosts"] == ["c"]
    assert settings(deployed)["nested"] == {"x": 1, "w": 3, "z": 4}
    assert "debug" not in settings(deployed)


@pytest.mark.helm
def test_a_deploy_whose_record_fails_says_so_and_the_next_run_completes_it(
    app: App, emulator: Any
) -> None:
    sha = app.heads[0]
    # The first record (image built) creates the ConfigMap; the second (deployed) replaces it.
    emulator.faults.add("PUT", "/configmaps/ci-runner-shop$", 500)
    done = app.run()
    assert done.code == 3, done.output
    assert f"deployed {sha[:7]} as {app.deploy_ns}/{RELEASE} revision 1" in done.stderr
    assert "but the state was not recorded" in done.stderr
    assert app.helm("status", RELEASE)["info"]["status"] == "deployed"

    again = app.run()
    assert again.code == 0, again.output
    assert app.status()["lastDeployedSha"] == sha
    assert len(app.build_jobs()) == 1  # completed by a no-change redeploy, not a rebuild


@pytest.mark.helm
def test_an_api_server_that_stops_answering_helm_is_an_outage_not_a_failed_deploy(
    app: App, emulator: Any
) -> None:
    sha = app.heads[0]
    app.env["GIT_TOKEN"] = "fake-e2e-outage-token-0123456789"  # so that statuses are posted
    # Every request helm makes for the app's Deployment is answered 503 ServiceUnavailable, as
    # an API server whose storage is away answers (client-go's text for that reason).
    unavailable = {
        "reason": "ServiceUnavailable",
        "message": "the server is currently unable to handle the request",
    }
    emulator.faults.add("*", "/deployments", 503, times=1000, body=unavailable)
    done = app.run()
    assert done.code == 3, done.output
    assert "helm lost the Kubernetes API" in done.stderr
    assert "attempt" not in done.stderr
    state = app.state()
    assert state is not None
    assert state["metadata"]["annotations"].get("ci-runner.io/attempts", "0") == "0"
    assert "failure" not in [s["state"] for s in app.github.statuses("acme/shop", sha)]

    emulator.faults.clear()
    again = app.run()
    assert again.code == 0, again.output
    assert app.status()["lastDeployedSha"] == sha
    assert len(app.build_jobs()) == 1  # the image built before the outage is deployed


def test_removing_the_attempts_annotation_builds_afresh(app: App, emulator: Any) -> None:
    emulator.jobs.behave("fail", labels=BUILD)
    assert [app.run().code for _ in range(4)] == [1, 1, 1, 0]  # given up after three
    with app.api() as api:
        from kubernetes import client

        client.CoreV1Api(api).patch_namespaced_config_map(
            f"ci-runner-{RELEASE}",
            app.cicd,
            {"metadata": {"annotations": {"ci-runner.io/attempts": None}}},
        )
    failed_jobs = {j["metadata"]["name"] for j in app.build_jobs()}
    emulator.jobs.behave("succeed", labels=BUILD)
    done = app.run()
    assert done.code == 0, done.output
    new = {j["metadata"]["name"] for j in app.build_jobs()} - failed_jobs
    assert len(new) == 1  # the failed attempt-1 Job was not adopted again


@pytest.mark.helm
def test_a_missing_cicd_namespace_is_created_labelled_for_kaniko(app: App, emulator: Any) -> None:
    from kubernetes import client

    done = app.run(CICD_NS="new-cicd")
    assert done.code == 0, done.output
    assert "created namespace new-cicd (Pod Security enforce: baseline)" in done.stderr
    with app.api() as api:
        created = client.CoreV1Api(api).read_namespace("new-cicd")
    assert created.metadata.labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert app.deployed_image() == f"{IMAGE}:{app.heads[0]}"  # Kaniko was admitted there
    again = app.run(CICD_NS="new-cicd")  # state there now: the namespace is not asked again
    assert again.code == 0 and "created namespace" not in again.stderr, again.output
    # The chart's Roles live in the CICD namespace it is installed in, never in one the runner
    # created (a run as an admin, or with plain manifests): nothing to replay against them.
    emulator.clear_requests()


def test_a_missing_cicd_namespace_is_a_configuration_error(app: App, emulator: Any) -> None:
    emulator.clear_requests()
    done = app.run(CICD_NS="no-such-ns", CREATE_NAMESPACE="false")
    assert done.code == 2, done.output
    assert "CICD_NS namespace 'no-such-ns' does not exist" in done.stderr
    assert "kubectl create namespace no-such-ns" in done.stderr
    assert not [r for r in emulator.requests if r.verb in WRITES and r.status < 400]
    # RBAC cannot name a namespace that does not exist: nothing to replay against the Roles.
    emulator.clear_requests()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_missing_registry_secret_is_named_before_any_job(
    app: App, emulator: Any, dry_run: bool
) -> None:
    done = app.run(*(["--dry-run"] if dry_run else []), REGISTRY_SECRET="registry-push")
    assert done.code == 2, done.output
    assert f"REGISTRY_SECRET Secret 'registry-push' in namespace '{app.cicd}' does not exist" in (
        done.stderr
    )
    assert app.build_jobs() == []
    assert app.state() is None or "ci-runner.io/attempts" not in (app.state() or {}).get(
        "metadata", {}
    ).get("annotations", {})


def test_dry_run_refuses_what_a_run_would_refuse(app: App) -> None:
    app.push({"deploy/chart/Chart.yaml": None})
    done = app.run("--dry-run")
    assert done.code == 2, done.output
    assert "holds no Chart.yaml" in done.stderr
    assert app.state() is None


def test_json_logs_mean_every_stderr_line_is_one_object(app: App) -> None:
    refused = app.run(LOG_FORMAT="json", IMAGE="")
    assert refused.code == 2
    lines = [json.loads(line) for line in refused.stderr.strip().splitlines()]
    assert lines[-1]["exitCode"] == 2 and "IMAGE is required" in lines[-1]["message"]

    done = app.run(LOG_FORMAT="json")
    records = [json.loads(line) for line in done.stderr.strip().splitlines()]
    assert records and all({"level", "message"} <= r.keys() for r in records)
    assert records[-1]["exitCode"] == done.code


def helm_processes(namespace: str) -> list[str]:
    """Command lines of live helm processes working on ``namespace``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if words and words[0].endswith(b"helm") and namespace.encode() in words:
            found.append(b" ".join(words).decode(errors="replace"))
    return found


@pytest.mark.helm
def test_sigterm_during_a_slow_upgrade_stops_helm_too(app: App, emulator: Any) -> None:
    assert app.run().code == 0
    running, held, newer = app.start_a_slow_upgrade()  # helm waits: the release is pending
    assert helm_processes(app.deploy_ns)
    err = app.terminate(running)
    assert running.returncode == 128 + signal.SIGTERM, err
    assert helm_processes(app.deploy_ns) == []  # helm got the signal; none is left behind

    with contextlib.suppress(KeyError):  # helm's rollback may have removed the Job already
        emulator.jobs.release(app.deploy_ns, held, "succeed")
    emulator.jobs.behave("succeed", name=f"{RELEASE}-migrate")
    done = app.run()
    assert done.code == 0, done.output
    assert app.deployed_image() == f"{IMAGE}:{newer}"
    assert app.helm("status", RELEASE)["info"]["status"] == "deployed"


@pytest.mark.parametrize(
    ("outcome", "env", "expected"),
    [
        # A pull that may still succeed, and a node an autoscaler may still add, are given
        # BUILD_START_GRACE, at most BUILD_TIMEOUT/4 (here 1 s).
        ("image-pull-error", {"BUILD_TIMEOUT": "4"}, "ImagePullBackOff: Back-off pulling image"),
        ("pod-forbidden", {}, 'FailedCreate: Error creating: pods "'),
        ("unschedulable", {"BUILD_TIMEOUT": "4"}, "cannot be scheduled for 1s: 0/1 nodes"),
    ],
)
def test_a_build_pod_that_cannot_start_fails_the_attempt_with_the_reason(
    app: App, emulator: Any, outcome: str, env: dict[str, str], expected: str
) -> None:
    emulator.jobs.behave(outcome, labels=BUILD)
    done = app.run(**env)
    assert done.code == 1, done.output
    assert expected in done.stderr
    annotations = (app.state() or {})["metadata"]["annotations"]
    assert expected in annotations["ci-runner.io/last-error"]
    warnings = [e for e in emulator.list("v1", "events", app.cicd) if e["reason"] == "BuildFailed"]
    assert warnings and expected in warnings[0]["message"]
    assert app.build_jobs() == []  # abandoned, so deleted: the next run starts clean


def test_a_quota_that_never_clears_fails_after_the_grace_and_the_job_is_deleted(
    app: App, emulator: Any
) -> None:
    quota = 'pods "b" is forbidden: exceeded quota: builds, requested: cpu=500m, limited: cpu=1'
    emulator.jobs.behave("pod-forbidden", labels=BUILD, message=f"Error creating: {quota}")
    done = app.run(BUILD_START_GRACE="1")
    assert done.code == 1, done.output
    assert "exceeded quota" in done.stderr and "not resolved within 1s" in done.stderr
    assert done.stderr.count("can resolve by itself") == 1  # reported once, not every look
    assert app.build_jobs() == []


@pytest.mark.helm
def test_an_image_pull_back_off_that_clears_is_waited_for(app: App, emulator: Any) -> None:
    emulator.jobs.behave("image-pull-error", labels=BUILD)
    running = app.start()
    job = app.wait_for_build_job()

    def backing_off() -> bool:
        pods = emulator.list("v1", "pods", app.cicd)
        states = [
            c.get("state", {}) for p in pods for c in p["status"].get("containerStatuses", [])
        ]
        return any(s.get("waiting", {}).get("reason") == "ImagePullBackOff" for s in states)

    until(backing_off)
    seen = len(emulator.requests)
    # The runner has looked at the pod in back-off (a list of pods after it was so) ...
    until(lambda: any(r.method == "GET" and "/pods" in r.path for r in emulator.requests[seen:]))
    emulator.jobs.release(app.cicd, job)  # ... and then the registry answers again
    _, err = running.communicate(timeout=120)
    assert running.returncode == 0, err
    assert "ImagePullBackOff" in err and "can resolve by itself" in err
    assert app.status()["lastDeployedSha"] == app.heads[-1]


@pytest.mark.helm
def test_an_unschedulable_build_the_autoscaler_scales_up_for_is_waited_for(
    app: App, emulator: Any
) -> None:
    emulator.jobs.behave("unschedulable", labels=BUILD)
    running = app.start()
    job = app.wait_for_build_job()

    def pending_pod() -> str | None:
        for pod in emulator.list("v1", "pods", app.cicd):
            conditions = pod["status"].get("conditions") or []
            if any(c.get("reason") == "Unschedulable" for c in conditions):
                return str(pod["metadata"]["name"])
        return None

    until(lambda: pending_pod() is not None)
    pod = pending_pod()
    # What the cluster autoscaler records on a pending pod it adds a node for (a Normal Event,
    # reason TriggeredScaleUp: cluster-autoscaler's scale-up status processor).
    emulator.put(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod}.scale-up", "namespace": app.cicd},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": app.cicd},
            "reason": "TriggeredScaleUp",
            "type": "Normal",
            "message": "pod triggered scale-up: [{builders 1->2 (max: 5)}]",
            "source": {"component": "cluster-autoscaler"},
        }
    )
    seen = len(emulator.requests)

    def asked_for_scale_up() -> bool:
        return any(
            r.resource == "events" and "TriggeredScaleUp" in r.query.get("fieldSelector", "")
            for r in emulator.requests[seen:]
        )

    until(asked_for_scale_up)  # the runner looked after the autoscaler spoke ...
    emulator.jobs.release(app.cicd, job)  # ... and then the new node takes the pod
    _, err = running.communicate(timeout=120)
    assert running.returncode == 0, err
    assert "the cluster autoscaler is adding a node" in err
    assert app.status()["lastDeployedSha"] == app.heads[-1]


@pytest.mark.helm
def test_a_failed_mount_that_clears_is_waited_for(app: App, emulator: Any) -> None:
    auth = base64.b64encode(b"robot:fake-registry-password-0123").decode()
    config = json.dumps({"auths": {"registry.example.com": {"auth": auth}}})
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "registry-push", "namespace": app.cicd},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
    }
    # The runner finds the Secret when it checks it; by the time the kubelet mounts it, a
    # rotation (delete, then create) has it gone for a while: the runner's read is answered
    # with the Secret, the store does not hold it yet.
    emulator.faults.add("GET", f"/namespaces/{app.cicd}/secrets/registry-push$", 200, body=secret)
    running = app.start(REGISTRY_SECRET="registry-push")
    app.wait_for_build_job()

    def failed_mount() -> bool:
        events = emulator.list("v1", "events", app.cicd)
        return any(e.get("reason") == "FailedMount" for e in events)

    until(failed_mount)
    seen = len(emulator.requests)
    until(lambda: any(r.resource == "events" for r in emulator.requests[seen:]))  # looked at it
    emulator.put(secret)  # the rotation ends: the kubelet mounts it and the build runs
    _, err = running.communicate(timeout=120)
    assert running.returncode == 0, err
    assert "FailedMount" in err and "can resolve by itself" in err
    assert app.status()["lastDeployedSha"] == app.heads[-1]


def until(condition: Any, within: float = 30) -> None:
    """Poll ``condition`` until it holds, with a deadline (not a sleep as synchronisation)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def test_kubectl_describe_shows_the_runners_events(app: App, emulator: Any) -> None:
    emulator.jobs.behave("fail", labels=BUILD)
    assert app.run().code == 1
    described = subprocess.run(
        ["kubectl", "describe", "configmap", f"ci-runner-{RELEASE}", "--namespace", app.cicd],
        env=app.env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    events = described.split("Events:", 1)[1]
    assert "BuildFailed" in events and "attempt 1/3" in events


def test_a_state_the_runner_did_not_write_is_handled_not_trusted(app: App) -> None:
    from kubernetes import client

    sha = app.heads[0]
    with app.api() as api:
        client.CoreV1Api(api).create_namespaced_config_map(
            app.cicd,
            {
                "metadata": {
                    "name": f"ci-runner-{RELEASE}",
                    "annotations": {
                        "ci-runner.io/pending-sha": "not-a-sha",
                        "ci-runner.io/attempts": "-2",
                        "ci-runner.io/github-etag-sha": "HEAD",
                        "ci-runner.io/github-etag": '"stale"',
                    },
                },
                "data": {"lastDeployedSha": "main", "lastRevision": "x"},
            },
        )
    done = app.run()
    assert done.code == 0, done.output
    assert "Traceback" not in done.stderr
    assert "is not what the runner writes" in done.stderr
    assert app.status()["lastDeployedSha"] == sha
    assert all("not-a-sha" not in r.path for r in app.github.requests)
    assert all(job["metadata"]["name"].endswith("-1") for job in app.build_jobs())


def test_no_usable_kubeconfig_names_the_path_it_tried(app: App, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    done = app.run(KUBECONFIG=str(missing))
    assert done.code == 2, done.output
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("Error: no Kubernetes configuration") and str(missing) in line
