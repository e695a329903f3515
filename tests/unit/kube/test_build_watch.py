"""When a build can never start: a pure decision over the pod and its Warning Events."""

from __future__ import annotations

from typing import Any

from ci_runner.kube.build_watch import pod_state, stuck


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
    for reason in ("ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName"):
        assert why(pod(reason), [], 0, 60) == f"{reason}: {reason} details"


def test_a_first_pull_error_and_a_starting_container_are_given_time() -> None:
    assert why(pod("ErrImagePull"), [], 0, 60) is None
    assert why(pod("ContainerCreating"), [], 0, 60) is None
    assert why(None, [], 0, 60) is None


def test_unschedulable_ends_only_after_the_grace() -> None:
    assert why(pod(unschedulable=True), [], 30, 60) is None
    assert "Insufficient memory" in (why(pod(unschedulable=True), [], 61, 60) or "")


def test_failed_create_and_failed_mount_events_end_at_once() -> None:
    event = {"reason": "FailedMount", "message": 'secret "x" not found'}
    assert why(pod("ContainerCreating"), [event], 0, 60) == 'FailedMount: secret "x" not found'
    assert why(None, [{"reason": "FailedCreate", "message": "forbidden"}], 0, 60)


def test_the_progress_phrase() -> None:
    assert pod_state(None) == "no pod yet"
    assert pod_state(pod("ErrImagePull")) == "pod Pending (ErrImagePull)"
