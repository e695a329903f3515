"""When a build can never start: a pure decision over the pod and its Warning Events."""

from __future__ import annotations

from typing import Any

import pytest
from ci_runner.errors import Gone, KubernetesError
from ci_runner.kube.build_watch import Watcher, pod_state, stuck, troubles

from tests.support.settings import app_settings

SETTINGS = app_settings()


def pod(waiting: str | None = None, unschedulable: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending"}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": f"{waiting} details"}}
        status["containerStatuses"] = [{"name": "kaniko", "state": state}]
    if unschedulable:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory.",
            }
        ]
    return {"metadata": {"name": "p"}, "status": status}


def why(*args: Any) -> str | None:
    """Why ``stuck`` ends the build (always as a failure), or None."""
    verdict = stuck(*args)
    assert verdict is None or not verdict.succeeded
    return verdict.reason if verdict is not None else None


def test_hopeless_waiting_reasons_end_at_once() -> None:
    for reason in ("InvalidImageName", "ErrImageNeverPull"):
        assert why(pod(reason), [], 0, 60) == f"{reason}: {reason} details"


def test_a_pull_back_off_or_a_missing_secret_is_given_the_grace() -> None:
    for reason in ("ImagePullBackOff", "CreateContainerConfigError"):
        assert why(pod(reason), [], 59, 60) is None
        assert why(pod(reason), [], 61, 60) == (
            f"{reason}: {reason} details (not resolved within 60s)"
        )


def test_a_first_pull_error_and_a_starting_container_are_given_time() -> None:
    assert why(pod("ErrImagePull"), [], 0, 60) is None
    assert why(pod("ContainerCreating"), [], 0, 60) is None
    assert why(None, [], 0, 60) is None


def test_unschedulable_ends_only_after_the_grace() -> None:
    assert why(pod(unschedulable=True), [], 30, 60) is None
    assert "Insufficient memory" in (why(pod(unschedulable=True), [], 61, 60) or "")


def test_failed_mount_and_a_quota_are_given_the_grace_pod_security_is_not() -> None:
    mount = {"reason": "FailedMount", "message": 'secret "x" not found'}
    assert why(pod("ContainerCreating"), [mount], 30, 60) is None
    assert why(pod("ContainerCreating"), [mount], 61, 60) == (
        'FailedMount: secret "x" not found (not resolved within 60s)'
    )
    quota = {"reason": "FailedCreate", "message": 'pods "b" is forbidden: exceeded quota: q'}
    assert why(None, [quota], 30, 60) is None
    assert why(None, [quota], 61, 60)
    refused = {"reason": "FailedCreate", "message": 'pods "b" is forbidden: violates PodSecurity'}
    assert (
        why(None, [refused], 0, 60)
        == 'FailedCreate: pods "b" is forbidden: violates PodSecurity (Kaniko runs as root: '
        "label the CICD namespace pod-security.kubernetes.io/enforce=baseline)"
    )


def test_warnings_that_passed_no_longer_count() -> None:
    mount = {"reason": "FailedMount", "message": 'secret "x" not found'}
    running = {"metadata": {"name": "p"}, "status": {"phase": "Running"}}
    assert troubles(running, [mount]) == []  # the Secret came, the pod runs
    quota = {"reason": "FailedCreate", "message": "exceeded quota: q"}
    assert troubles(pod("ContainerCreating"), [quota]) == []  # the pod was created after all


def test_the_progress_phrase() -> None:
    assert pod_state(None) == "no pod yet"
    assert pod_state(pod("ErrImagePull")) == "pod Pending (ErrImagePull)"


class FlakyWatch:
    """A Kubernetes whose first watch of the build Job breaks off, and the second sees it end."""

    def __init__(self, error: KubernetesError) -> None:
        self.error = error
        self.watches = 0

    def read(self, *args: Any) -> dict[str, Any]:
        return {"metadata": {"name": "b", "resourceVersion": "7"}, "status": {"active": 1}}

    def query(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return []

    def watch(self, *args: Any) -> list[tuple[str, dict[str, Any]]]:
        self.watches += 1
        if self.watches == 1:
            raise self.error
        done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
        return [("MODIFIED", done)]


@pytest.mark.parametrize(
    "error",
    [
        KubernetesError("Kubernetes API unreachable while watching: connection reset"),
        KubernetesError("Kubernetes API answered 503 while watching", 503),
        Gone("Kubernetes API answered 410 while watching", 410),
    ],
)
def test_a_watch_that_breaks_off_is_resumed(error: KubernetesError) -> None:
    kube = FlakyWatch(error)
    result = Watcher(kube, SETTINGS, "b").wait()  # type: ignore[arg-type]
    assert result.succeeded and kube.watches == 2


def test_a_watch_refused_for_good_ends_the_run() -> None:
    kube = FlakyWatch(KubernetesError("Kubernetes API answered 403 while watching", 403))
    with pytest.raises(KubernetesError):
        Watcher(kube, SETTINGS, "b").wait()  # type: ignore[arg-type]


def init_pod(init_state: dict[str, Any], main_waiting: str = "PodInitializing") -> dict[str, Any]:
    """The build pod while (or after) its init container fetches the context."""
    status = {
        "phase": "Failed" if "terminated" in init_state else "Pending",
        "initContainerStatuses": [{"name": "fetch-context", "state": init_state}],
        "containerStatuses": [
            {"name": "kaniko", "state": {"waiting": {"reason": main_waiting}}},
        ],
    }
    return {"metadata": {"name": "p"}, "status": status}


def test_the_progress_phrase_names_the_context_fetch() -> None:
    running = init_pod({"running": {"startedAt": "2026-12-07T18:00:00Z"}})
    assert pod_state(running) == "pod Pending (fetch-context running)"
    waiting = init_pod({"waiting": {"reason": "ImagePullBackOff"}})
    assert pod_state(waiting) == "pod Pending (fetch-context: ImagePullBackOff)"
    assert pod_state(init_pod({"waiting": {"reason": "PodInitializing"}})) == (
        "pod Pending (PodInitializing)"
    )


def test_an_init_container_kept_from_starting_is_a_trouble_like_kaniko() -> None:
    # A runner image that cannot be pulled, a token Secret that is not there yet.
    for reason in ("ImagePullBackOff", "CreateContainerConfigError"):
        stalled = init_pod({"waiting": {"reason": reason, "message": f"{reason} details"}})
        assert why(stalled, [], 59, 60) is None
        assert why(stalled, [], 61, 60) == f"{reason}: {reason} details (not resolved within 60s)"
    hopeless = init_pod({"waiting": {"reason": "InvalidImageName", "message": "bad"}})
    assert why(hopeless, [], 0, 60) == "InvalidImageName: bad"


@pytest.mark.parametrize("code", [1, 2, 3])
def test_a_failed_fetch_is_read_with_its_exit_code_and_message(code: int) -> None:
    from ci_runner.kube.build_watch import fetch_failure

    ended = {"terminated": {"exitCode": code, "reason": "Error", "message": "what happened"}}
    assert fetch_failure(init_pod(ended)) == (code, "what happened")
    done = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    assert fetch_failure(init_pod(done, main_waiting="")) is None
    assert fetch_failure(pod("ImagePullBackOff")) is None
    assert fetch_failure(None) is None
