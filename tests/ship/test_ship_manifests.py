"""The plain manifests: `kubectl apply -k manifests/` after editing only kustomization.yaml."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.ship.shipkit import (
    KUBERNETES_VERSIONS,
    assert_one_restricted_cycle_at_a_time,
    container_env,
    kubernetes_validate,
    one,
)
from tests.support import charts, rbac
from tests.support.charts import Document

KUSTOMIZATION = charts.MANIFESTS / "kustomization.yaml"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_are_valid_kubernetes(manifest_docs: list[Document], version: str) -> None:
    result = kubernetes_validate(manifest_docs, version)
    assert result.returncode == 0, result.stdout + result.stderr


def test_manifests_install_every_piece(manifest_docs: list[Document]) -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in manifest_docs)
    settings = [n for k, n in kinds if k == "ConfigMap"]
    assert len(settings) == 1 and settings[0].startswith("ci-runner-settings-")
    assert [k for k in kinds if k[0] != "ConfigMap"] == [
        ("ClusterRole", "ci-runner-create-namespace"),
        ("ClusterRoleBinding", "ci-runner-create-namespace"),
        ("CronJob", "ci-runner"),
        ("Namespace", "cicd"),
        ("Role", "ci-runner"),
        ("Role", "ci-runner-deploy"),
        ("Role", "ci-runner-impersonate"),
        ("RoleBinding", "ci-runner"),
        ("RoleBinding", "ci-runner-deploy"),
        ("RoleBinding", "ci-runner-impersonate"),
        ("Secret", "ci-runner-example-app-git"),  # the token copy, empty: the runner updates it
        ("ServiceAccount", "ci-runner"),
        ("ServiceAccount", "ci-runner-deployer"),  # helm acts as it (DEPLOYER)
    ]
    namespace = one(manifest_docs, "Namespace", "cicd")
    # Kaniko build pods run as root: the CICD namespace must not enforce "restricted".
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_cronjob_runs_one_restricted_cycle_at_a_time(manifest_docs: list[Document]) -> None:
    cronjob = one(manifest_docs, "CronJob", "ci-runner")
    assert_one_restricted_cycle_at_a_time(cronjob)
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ci-runner"


def test_cronjob_gets_settings_and_an_optional_token(manifest_docs: list[Document]) -> None:
    cronjob = one(manifest_docs, "CronJob", "ci-runner")
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    (source,) = container["envFrom"]
    settings = one(manifest_docs, "ConfigMap", source["configMapRef"]["name"])["data"]
    for required in ("REPO", "IMAGE", "CHART_PATH", "RELEASE", "DEPLOY_NS"):
        assert settings[required], required
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", settings["REPO"])
    env = container_env(cronjob)
    assert env["GIT_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "ci-runner-git-token",
        "key": "token",
        "optional": True,
    }
    assert env["CICD_NS"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["HOME"]["value"] == "/home/runner"


def edited_copy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """A copy of manifests/ whose kustomization.yaml had these (regex, replacement) edits."""
    copy = tmp_path / "manifests"
    shutil.copytree(charts.MANIFESTS, copy)
    text = (copy / "kustomization.yaml").read_text()
    for pattern, replacement in edits:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count, f"{pattern!r} not found in kustomization.yaml"
    (copy / "kustomization.yaml").write_text(text)
    return copy


def test_one_edit_of_the_kustomization_moves_everything(kubectl_bin: str, tmp_path: Path) -> None:
    """Namespace, deploy namespace and image are each set in kustomization.yaml only."""
    copy = edited_copy(
        tmp_path,
        (r"^namespace: cicd$", "namespace: tools"),
        (r"DEPLOY_NS=example-app", "DEPLOY_NS=shop"),
        (r"newName: ghcr.io/ci-runner/ci-runner", "newName: registry.example.com/ci-runner"),
        (r"newTag: 0.1.0", "newTag: 9.9.9"),
    )
    docs = charts.render_manifests(kubectl=kubectl_bin, path=copy)
    one(docs, "Namespace", "tools")
    for doc in docs:
        name = (doc["kind"], doc["metadata"]["name"])
        in_deploy_ns = {("Role", "ci-runner-deploy"), ("RoleBinding", "ci-runner-deploy"),
                        ("Role", "ci-runner-impersonate"), ("RoleBinding", "ci-runner-impersonate"),
                        ("ServiceAccount", "ci-runner-deployer")}  # fmt: skip
        if name in in_deploy_ns:
            assert doc["metadata"]["namespace"] == "shop", name
        elif doc["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert doc["metadata"]["namespace"] == "tools", name
        deployer = {"kind": "ServiceAccount", "name": "ci-runner-deployer", "namespace": "shop"}
        runner = {"kind": "ServiceAccount", "name": "ci-runner", "namespace": "tools"}
        for subject in doc.get("subjects", []):
            assert subject == (deployer if name[1] == "ci-runner-deploy" else runner), name
    cronjob = one(docs, "CronJob", "ci-runner")
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/ci-runner:9.9.9"
    # The build pod's init container runs that same image.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RUNNER_IMAGE"] == "registry.example.com/ci-runner:9.9.9"
    grants = rbac.rules_from_documents(docs)
    deployer_grants = rbac.rules_from_documents(docs, ("shop", "ci-runner-deployer"))
    assert rbac.allows(deployer_grants, "create", "apps", "deployments", "shop")
    assert not rbac.allows(grants, "create", "apps", "deployments", "shop")
    assert rbac.allows(
        grants, "impersonate", "", "serviceaccounts", "shop", name="ci-runner-deployer"
    )
    assert rbac.allows(grants, "create", "coordination.k8s.io", "leases", "tools")


def test_the_namespace_clusterrole_can_be_turned_off(kubectl_bin: str, tmp_path: Path) -> None:
    copy = edited_copy(tmp_path, (r"^components:\n  - components/create-namespace\n", ""))
    docs = charts.render_manifests(kubectl=kubectl_bin, path=copy)
    assert [d for d in docs if d["kind"].startswith("Cluster")] == []
    grants = rbac.rules_from_documents(docs)
    assert not rbac.allows(grants, "create", "", "namespaces", None)
