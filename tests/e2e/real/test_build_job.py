"""The Kaniko Job on a real API server: the real Job controller's conditions decide, kwok plays
the build pod (tests/cluster/stages.yaml), and Pod Security admission is the real one."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.e2e.appkit import REPO, App
from tests.e2e.real.realkit import DIGEST, fate, kubectl, require_kwok, require_real

pytestmark = pytest.mark.helm


def conditions(job: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c.get("reason", "") for c in job["status"].get("conditions") or []}


def test_a_build_that_succeeds_deploys_the_digest_it_pushed(app: App) -> None:
    require_kwok(app)
    done = app.run(BUILD_POD=fate("digest"))
    assert done.code == 0, done.output
    (job,) = app.build_jobs()
    assert {"SuccessCriteriaMet", "Complete"} <= set(conditions(job))
    assert DIGEST in app.deployed_image()


def test_a_build_that_exits_1_is_a_failed_attempt_with_kanikos_message(app: App) -> None:
    require_kwok(app)
    done = app.run(BUILD_POD=fate("fail"))
    assert done.code == 1, done.output
    (job,) = app.build_jobs()
    assert {"FailureTarget", "Failed"} <= set(conditions(job))
    assert conditions(job)["Failed"] == "BackoffLimitExceeded"
    status = app.status()
    assert (status["phase"], status["attempts"]) == ("failing", 1)
    assert "BackoffLimitExceeded" in status["lastError"], status
    assert kubectl(app, "get", "deployment", "shop", "-n", app.deploy_ns, check=False).returncode


def test_a_build_past_its_deadline_is_a_failed_attempt(app: App) -> None:
    require_kwok(app)
    done = app.run(BUILD_POD=fate("hold"), BUILD_TIMEOUT="3")
    assert done.code == 1, done.output
    (job,) = app.build_jobs()
    assert conditions(job)["Failed"] == "DeadlineExceeded"
    assert "DeadlineExceeded" in done.stderr


def test_a_build_pod_that_cannot_pull_its_image_ends_the_attempt_with_the_reason(
    app: App,
) -> None:
    require_kwok(app)
    done = app.run(BUILD_POD=fate("pull-error"), BUILD_START_GRACE="2")
    assert done.code == 1, done.output
    assert "ImagePullBackOff" in done.stderr and "not resolved within 2s" in done.stderr
    assert app.build_jobs() == []  # abandoned, so deleted (with its pod)


def test_an_image_pull_back_off_that_clears_is_waited_for_and_deploys(app: App) -> None:
    """The registry answers again while the runner gives the pull its grace: built, deployed."""
    require_kwok(app)
    running = app.start(BUILD_POD=fate("pull-error"))
    said: list[str] = []
    assert running.stderr is not None
    reader = threading.Thread(target=lambda: said.extend(running.stderr or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not any("ImagePullBackOff" in line for line in said):  # a condition, polled
        assert running.poll() is None, "".join(said)
        assert time.monotonic() < deadline, "the runner never reported the back-off"
        time.sleep(0.1)
    (job,) = app.build_jobs()
    (pod,) = build_pods(app, job)
    name = pod["metadata"]["name"]
    kubectl(app, "annotate", "pod", name, "-n", app.cicd, "ci-runner.test/pulled=true")
    assert running.wait(timeout=120) == 0, "".join(said)
    reader.join(timeout=10)
    err = "".join(said)
    assert "can resolve by itself" in err
    assert app.status()["lastDeployedSha"] == app.heads[-1]


def test_a_restricted_cicd_namespace_refuses_kaniko_and_the_runner_says_why(app: App) -> None:
    """Pod Security admission (the real plugin) refuses Kaniko's root pod: the runner ends the
    attempt in seconds, with the admission's reason and the fix."""
    require_real(app)
    kubectl(app, "label", "namespace", app.cicd, "pod-security.kubernetes.io/enforce=restricted")
    done = app.run()
    assert done.code == 1, done.output
    assert "FailedCreate" in done.stderr
    assert "violates PodSecurity" in done.stderr
    assert "label the CICD namespace pod-security.kubernetes.io/enforce=baseline" in done.stderr
    assert "violates PodSecurity" in app.status()["lastError"]


def test_kubectl_describe_shows_the_runners_events_on_the_state(app: App) -> None:
    require_kwok(app)
    assert app.run(BUILD_POD=fate("fail")).code == 1
    described = kubectl(app, "describe", "configmap", "ci-runner-shop", "-n", app.cicd).stdout
    assert "Events:" in described
    events = json.loads(kubectl(app, "get", "events", "-n", app.cicd, "-o", "json").stdout)["items"]
    ours = [e for e in events if e["involvedObject"]["name"] == "ci-runner-shop"]
    assert ours, "no Event on the state ConfigMap"
    assert any(e["type"] == "Warning" for e in ours)


def test_a_build_pod_field_the_api_server_does_not_know_is_a_configuration_error(
    app: App,
) -> None:
    """BUILD_POD's keys are checked by the runner, but what is inside them only by the API
    server: the Job is created with fieldValidation=Strict, so a typo is refused, not dropped."""
    require_real(app)
    app.env["GIT_TOKEN"] = "fake-real-status-token-0123456789"  # so that statuses are posted
    typo = '{"affinity": {"nodeAfinity": {}}}'
    done = app.run(BUILD_POD=typo)
    assert done.code == 2, done.output
    assert "BUILD_POD" in done.stderr and "nodeAfinity" in done.stderr
    assert app.build_jobs() == []
    assert app.status().get("attempts", 0) in (0, None)
    assert app.github.statuses(REPO, app.heads[-1]) == []  # no "building" left behind


# -- the build context, fetched by the init container (issue 17, item 4) ---------------------

TOKEN = "fake-real-init-token-0123456789"


def build_pods(app: App, job: dict[str, Any]) -> list[dict[str, Any]]:
    selector = f"batch.kubernetes.io/job-name={job['metadata']['name']}"
    listed = kubectl(app, "get", "pods", "-n", app.cicd, "-l", selector, "-o", "json").stdout
    pods: list[dict[str, Any]] = json.loads(listed)["items"]
    return pods


def test_the_pod_the_api_server_keeps_gives_the_token_to_the_init_container_only(
    app: App,
) -> None:
    """As the real API server stores (and defaults) the build pod: Kaniko has no environment
    and mounts no Secret but the registry's; the fetch runs first, as UID 10001 on a read-only
    root filesystem, with the token by reference."""
    require_kwok(app)
    app.env["GIT_TOKEN"] = TOKEN
    done = app.run(BUILD_POD=fate("digest"))
    assert done.code == 0, done.output
    (job,) = app.build_jobs()
    (pod,) = build_pods(app, job)
    spec = pod["spec"]
    assert TOKEN not in json.dumps(pod)
    (kaniko,) = spec["containers"]
    assert "env" not in kaniko and "envFrom" not in kaniko
    assert kaniko["args"][0] == "--context=dir:///workspace"
    (fetch,) = spec["initContainers"]
    refs = [e["valueFrom"]["secretKeyRef"] for e in fetch["env"] if "valueFrom" in e]
    assert refs == [{"name": "ci-runner-shop-git", "key": "token"}]
    assert fetch["securityContext"]["runAsUser"] == 10001
    assert fetch["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["automountServiceAccountToken"] is False
    secrets = {v["name"] for v in spec["volumes"] if "secret" in v}
    assert not secrets & {m["name"] for m in kaniko["volumeMounts"]} - {"registry-auth"}
    (init,) = pod["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["exitCode"] == 0


def test_an_archive_the_init_container_refuses_is_a_failed_attempt(app: App) -> None:
    require_kwok(app)
    done = app.run(BUILD_POD=fate("fetch-fail"))
    assert done.code == 1, done.output
    (job,) = app.build_jobs()
    assert conditions(job)["Failed"] == "BackoffLimitExceeded"
    assert "fetching the build context failed (exit code 1): BUILD_CONTEXT 'app'" in done.stderr
    status = app.status()
    assert (status["phase"], status["attempts"]) == ("failing", 1)
    assert "fetching the build context failed (exit code 1)" in status["lastError"]


def test_github_down_for_the_init_container_is_an_outage_and_no_attempt(app: App) -> None:
    require_kwok(app)
    done = app.run(BUILD_POD=fate("fetch-outage"))
    assert done.code == 3, done.output
    assert "fetching the build context failed (exit code 3): GitHub is unreachable" in (done.stderr)
    assert "attempt" not in done.stderr
    assert app.status().get("attempts", 0) in (0, None)
    (failed,) = app.build_jobs()

    again = app.run(BUILD_POD=fate("digest"))
    assert again.code == 0, again.output
    names = {j["metadata"]["name"] for j in app.build_jobs()}
    assert len(names) == 2 and failed["metadata"]["name"] in names
