"""RBAC as the real authorizer decides it, asked by real kubectl as a ServiceAccount.

``kubectl auth can-i`` sends a SelfSubjectAccessReview; the expected answers follow the rules of
Kubernetes' RBAC authorizer (plugin/pkg/auth/authorizer/rbac/rbac.go RuleAllows,
pkg/apis/rbac/v1/evaluation_helpers.go, pkg/registry/rbac/validation/rule.go): verbs, API groups,
resources and ``*/subresource``, resourceNames, the namespace of a RoleBinding, a ClusterRole
bound by a RoleBinding (only there) or by a ClusterRoleBinding (everywhere), Group subjects, and
the discovery paths every authenticated user may read. On a real cluster
(CI_RUNNER_TEST_KUBECONFIG) the same test runs unchanged.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.identity import service_account_kubeconfig
from tests.support.kube_target import KubeTarget


def _policy(a: str, b: str, unique: str) -> list[dict[str, object]]:
    rbac = "rbac.authorization.k8s.io/v1"
    sa = {"kind": "ServiceAccount", "name": "robot", "namespace": a}

    def binding(
        kind: str, name: str, ref_kind: str, ref: str, ns: str | None, subject: object
    ) -> dict[str, object]:
        meta: dict[str, str] = {"name": name} | ({"namespace": ns} if ns else {})
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref}
        return {"apiVersion": rbac, "kind": kind, "metadata": meta, "roleRef": role_ref,
                "subjects": [subject]}  # fmt: skip

    rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["token"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["*"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "robot", "namespace": a}},
        {"apiVersion": rbac, "kind": "Role", "metadata": {"name": "robot", "namespace": a},
         "rules": rules},
        {"apiVersion": rbac, "kind": "Role", "metadata": {"name": "events", "namespace": a},
         "rules": [{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]},
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": f"{unique}-leases"},
         "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                    "verbs": ["get", "update"]}]},
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": f"{unique}-nodes"},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]},
        # A ServiceAccount subject without a namespace is one of the RoleBinding's namespace.
        binding("RoleBinding", "robot", "Role", "robot", a,
                {"kind": "ServiceAccount", "name": "robot"}),
        binding("RoleBinding", "events", "Role", "events", a,
                {"kind": "Group", "name": f"system:serviceaccounts:{a}"}),
        binding("RoleBinding", "leases", "ClusterRole", f"{unique}-leases", a, sa),
        binding("RoleBinding", "ghost", "Role", "no-such-role", b, sa),
        binding("ClusterRoleBinding", f"{unique}-nodes", "ClusterRole", f"{unique}-nodes", None,
                sa),
    ]  # fmt: skip


@pytest.fixture
def robot(kube: KubeTarget, kubectl_bin: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(kubeconfig of ServiceAccount robot, its namespace, another namespace) with the policy."""
    a, b = kube.namespace, f"{kube.namespace}-b"
    unique = f"fidelity-{a}"

    def kubectl(*args: str, stdin: str | None = None) -> None:
        subprocess.run([kubectl_bin, *args], env=kube.env(), input=stdin, text=True,
                       capture_output=True, check=True, timeout=60)  # fmt: skip

    kubectl("create", "namespace", b)
    policy = _policy(a, b, unique)
    try:
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(policy))
        config = service_account_kubeconfig(kube, kubectl_bin, a, "robot", tmp_path / "robot")
        yield config, a, b
    finally:
        subprocess.run(
            [kubectl_bin, "delete", "clusterrolebinding,clusterrole", f"{unique}-nodes",
             f"{unique}-leases", "--ignore-not-found"],
            env=kube.env(), capture_output=True, check=False,
        )  # fmt: skip
        subprocess.run([kubectl_bin, "delete", "namespace", b, "--wait=false"],
                       env=kube.env(), capture_output=True, check=False)  # fmt: skip


# (kubectl auth can-i arguments, in the robot's namespace unless -n says "B", expected answer)
CASES = [
    (["get", "configmaps"], True),
    (["list", "configmaps"], True),
    (["watch", "configmaps"], False),  # a verb not listed
    (["get", "configmaps", "-n", "B"], False),  # a Role binds only in its namespace
    (["get", "pods", "--subresource=log"], True),
    (["get", "pods"], False),  # pods/log grants no pods
    (["create", "jobs.batch"], True),
    (["create", "jobs"], True),  # kubectl resolves the group
    (["create", "cronjobs.batch"], False),
    (["get", "secrets/token"], True),  # resourceNames: only that name
    (["get", "secrets/other"], False),
    (["get", "secrets"], False),  # resourceNames allow no request without a name
    (["list", "secrets"], False),
    (["update", "deployments.apps", "--subresource=scale"], True),  # */scale
    (["update", "deployments.apps"], False),
    (["delete", "services"], True),  # verbs: *
    (["update", "leases.coordination.k8s.io"], True),  # a ClusterRole through a RoleBinding
    (["update", "leases.coordination.k8s.io", "-n", "B"], False),  # ... only in its namespace
    (["create", "events"], True),  # a Group subject
    (["create", "events", "-n", "B"], False),
    (["list", "nodes"], True),  # a ClusterRoleBinding: cluster-wide
    (["get", "nodes"], False),
    (["get", "/version"], True),  # discovery: every authenticated user
    (["get", "/apis/batch/v1"], True),
    (["get", "/metrics"], False),
]


def test_kubectl_auth_can_i_as_a_service_account(
    robot: tuple[str, str, str], kubectl_bin: str
) -> None:
    config, a, b = robot
    wrong = []
    for args, allowed in CASES:
        words = [b if word == "B" else word for word in args]
        namespace = [] if "-n" in words else ["-n", a]
        answer = subprocess.run(
            [kubectl_bin, "auth", "can-i", *words, *namespace, "--kubeconfig", config],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        expected = ("yes", 0) if allowed else ("no", 1)
        # The real authorizer may add why after the verdict ("no - RBAC: role ... not found").
        verdict = (answer.stdout.split() or [""])[0]
        if (verdict, answer.returncode) != expected:
            wrong.append(f"can-i {' '.join(args)}: {answer.stdout.strip()} {answer.stderr}")
    assert not wrong, "\n".join(wrong)


def test_a_refused_request_is_403_worded_as_the_api_server_words_it(
    robot: tuple[str, str, str], kubectl_bin: str
) -> None:
    config, a, _ = robot
    refused = subprocess.run(
        [kubectl_bin, "get", "secrets", "-n", a, "--kubeconfig", config],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert (
        f'Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:{a}'
        f':robot" cannot list resource "secrets" in API group "" in the namespace "{a}"'
    ) in refused.stderr
    allowed = subprocess.run(
        [kubectl_bin, "get", "configmaps", "-n", a, "--kubeconfig", config, "-o", "name"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
