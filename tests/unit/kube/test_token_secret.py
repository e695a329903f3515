"""The runner's token copy: updated in place, keeping what made it; never created where the
runner may not."""

from __future__ import annotations

from typing import Any

import pytest
from ci_runner.errors import ConfigError, KubernetesError
from ci_runner.kube import token_secret

from tests.support.settings import app_settings

SETTINGS = app_settings(GIT_TOKEN="fake-token-0123456789")


class Saved:
    """Kube.save, recorded; ``refuse`` answers it with that HTTP status."""

    def __init__(self, refuse: int | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.refuse = refuse

    def save(self, kind: object, body: dict[str, Any]) -> dict[str, Any]:
        if self.refuse:
            raise KubernetesError("refused", self.refuse)
        self.bodies.append(body)
        return body


def test_an_update_keeps_the_labels_and_annotations_of_whoever_made_it() -> None:
    made_by_helm = {
        "metadata": {
            "name": "ci-runner-shop-git",
            "resourceVersion": "7",
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "ci", token_secret.EXPIRES: "x"},
        }
    }
    kube = Saved()
    token_secret.write(kube, SETTINGS, "fake-token-0123456789", made_by_helm)  # type: ignore[arg-type]
    (body,) = kube.bodies
    meta = body["metadata"]
    assert meta["resourceVersion"] == "7"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"  # its maker's stays
    assert meta["labels"]["ci-runner.io/release"] == "shop"
    assert meta["annotations"] == {"meta.helm.sh/release-name": "ci"}  # a plain token: no expiry
    assert body["stringData"] == {"token": "fake-token-0123456789"}


def test_a_missing_copy_the_runner_may_not_create_says_how_to_make_it() -> None:
    with pytest.raises(ConfigError) as caught:
        token_secret.write(Saved(refuse=403), SETTINGS, "fake-token-0123456789", None)  # type: ignore[arg-type]
    assert caught.value.problems == [
        "the token Secret 'ci-runner-shop-git' in namespace 'cicd' does not exist, and the "
        "runner may only update it: the chart and the manifests create it; else "
        "`kubectl create secret generic ci-runner-shop-git -n cicd`"
    ]
    with pytest.raises(KubernetesError):  # anything else stays what it was
        token_secret.write(Saved(refuse=500), SETTINGS, "fake-token-0123456789", None)  # type: ignore[arg-type]
