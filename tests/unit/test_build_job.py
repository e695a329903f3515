"""The Kaniko build Job manifest, as a pure function of settings and commit."""

from __future__ import annotations

import json
from typing import Any

from ci_runner.build import build_job, job_name, token_secret
from ci_runner.settings import Settings, load

SHA = "0123456789abcdef0123456789abcdef01234567"
BASE = {
    "REPO": "acme/shop",
    "IMAGE": "r.example.com/acme/shop",
    "CHART_PATH": "c",
    "RELEASE": "shop",
}


def job(**extra: str) -> dict[str, Any]:
    return build_job(load(Settings, {}, {**BASE, **extra}), SHA, 1)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = manifest["spec"]["template"]["spec"]["containers"][0]
    return first


def test_kaniko_clones_the_exact_commit_and_pushes_both_tags() -> None:
    args = container(job(BRANCH="feature/x"))["args"]
    assert f"--context=git://github.com/acme/shop.git#refs/heads/feature/x#{SHA}" in args
    assert f"--destination=r.example.com/acme/shop:{SHA}" in args
    assert "--destination=r.example.com/acme/shop:feature-x-latest" in args


def test_job_runs_once_within_the_build_timeout_and_is_cleaned_up() -> None:
    spec = job(BUILD_TIMEOUT="600")["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_labels_name_release_and_commit() -> None:
    labels = job()["metadata"]["labels"]
    assert labels["ci-runner.io/release"] == "shop"
    assert labels["ci-runner.io/commit"] == SHA


def test_token_only_as_a_secret_reference() -> None:
    manifest = job(GIT_TOKEN="fake-super-secret")
    assert "fake-super-secret" not in json.dumps(manifest)
    # Kaniko's basic auth: x-access-token and the token as password suits every token kind.
    user, password = container(manifest)["env"]
    assert user == {"name": "GIT_USERNAME", "value": "x-access-token"}
    assert password["name"] == "GIT_PASSWORD"
    assert password["valueFrom"]["secretKeyRef"] == {"name": "ci-runner-shop-git", "key": "token"}
    secret = token_secret(load(Settings, {}, {**BASE, "GIT_TOKEN": "fake-super-secret"}))
    assert secret["metadata"]["name"] == "ci-runner-shop-git"


def test_public_repo_needs_no_token() -> None:
    assert "env" not in container(job())


def test_registry_secret_is_mounted_as_kaniko_docker_config() -> None:
    manifest = job(REGISTRY_SECRET="regcred")
    (mount,) = container(manifest)["volumeMounts"]
    (volume,) = manifest["spec"]["template"]["spec"]["volumes"]
    assert mount["mountPath"] == "/kaniko/.docker"
    assert volume["secret"]["secretName"] == "regcred"
    assert volume["secret"]["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]


def test_context_sub_path_and_dockerfile() -> None:
    args = container(job(BUILD_CONTEXT="services/api", DOCKERFILE="build/Dockerfile"))["args"]
    assert "--context-sub-path=services/api" in args
    assert "--dockerfile=build/Dockerfile" in args


def test_job_names_are_valid_and_distinct_per_attempt() -> None:
    long_release = "r" * 53
    names = {job_name(long_release, SHA, n) for n in (1, 2, 3)}
    assert len(names) == 3
    assert all(len(n) <= 63 and n[0].isalnum() and n[-1].isalnum() for n in names)
