"""The fleet's Kubernetes shapes: the Job `kubectl create job --from` makes, the apps' running
Jobs, an app's environment without its Secrets, and the fleet's record."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from ci_runner.kube import fleet
from ci_runner.kube.fleet import Entry, Record

CRONJOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "ci-web", "namespace": "cicd", "uid": "u-1", "labels": {"x": "y"}},
    "spec": {
        "schedule": "*/5 * * * *",
        "suspend": True,
        "jobTemplate": {
            "metadata": {"labels": {"ci-runner.io/app": "web"}, "annotations": {"a": "b"}},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "serviceAccountName": "ci-web",
                        "containers": [
                            {
                                "name": "ci-runner",
                                "args": ["run"],
                                "env": [
                                    {"name": "REPO", "value": "o/web"},
                                    {"name": "EMPTY", "value": ""},
                                    {
                                        "name": "GIT_TOKEN",
                                        "valueFrom": {
                                            "secretKeyRef": {"name": "s", "key": "token"}
                                        },
                                    },
                                ],
                            }
                        ],
                    }
                },
            },
        },
    },
}


def test_the_job_is_the_one_kubectl_create_job_from_cronjob_makes() -> None:
    before = copy.deepcopy(CRONJOB)
    job = fleet.job_from_cronjob(CRONJOB, "ci-web-f1")
    assert job == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "ci-web-f1",
            "namespace": "cicd",
            "labels": {"ci-runner.io/app": "web"},
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual", "a": "b"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "ci-web",
                    "uid": "u-1",
                    "controller": True,
                }
            ],
        },
        "spec": CRONJOB["spec"]["jobTemplate"]["spec"],
    }
    assert before == CRONJOB


def test_a_job_name_leaves_room_like_the_cronjob_controllers() -> None:
    name = fleet.job_name("x" * 52, datetime(2100, 1, 1, tzinfo=UTC))
    assert len(name) <= 63 and name.startswith("x" * 52 + "-f")


def test_the_environment_leaves_values_from_secrets_unresolved() -> None:
    plain, elsewhere = fleet.environment(CRONJOB)
    assert plain == {"REPO": "o/web", "EMPTY": ""}
    assert elsewhere == ["GIT_TOKEN"]


def job(name: str, owner: str, *conditions: str) -> dict[str, object]:
    return {
        "metadata": {"name": name, "ownerReferences": [{"kind": "CronJob", "name": owner}]},
        "status": {"conditions": [{"type": c, "status": "True"} for c in conditions]},
    }


def test_running_jobs_are_told_by_their_owner_and_their_conditions() -> None:
    class Listing:
        def query(self, kind: object, namespace: str, **selectors: str) -> list[object]:
            assert selectors == {"label_selector": "ci-runner.io/app"}
            return [
                job("ci-web-1", "ci-web", "Complete"),
                job("ci-api-1", "ci-api", "Failed"),
                job("ci-api-2", "ci-api"),
                job("ci-db-1", "ci-db", "FailureTarget"),
            ]

    assert fleet.active_jobs(Listing(), "cicd") == {"ci-api": "ci-api-2", "ci-db": "ci-db-1"}  # type: ignore[arg-type]


def test_the_record_round_trips_and_ignores_hand_edits() -> None:
    entry = Entry("o/web", "main", "a" * 40, '"e1"', problem=None)
    assert Entry.of(entry.as_json()) == entry
    assert Entry.of("not json") == Entry()
    assert entry.etag_for("o/web", "main") == ('"e1"', "a" * 40)
    assert entry.etag_for("o/web", "dev") is None
    cm = {"metadata": {"name": "ci-fleet", "namespace": "cicd", "resourceVersion": "7"}}
    body = Record({}, 0, (), cm).with_entries({"ci-web": entry}, 99, ("ci-api",))
    assert body["metadata"]["resourceVersion"] == "7"
    assert body["metadata"]["annotations"] == {
        fleet.NOT_BEFORE: "99",
        fleet.DEFERRED: "ci-api",
    }
    assert Entry.of(body["data"]["ci-web"]) == entry
