"""Impersonation as kube-apiserver authorizes it, asked with a ServiceAccount's own token.

What helm's ``--kube-as-user`` (DEPLOYER) and ``ci-runner check``'s impersonated
SelfSubjectAccessReview rely on: each thing impersonated needs the verb ``impersonate`` on it (a
ServiceAccount on ``serviceaccounts`` by name in its namespace, any other user on ``users``, each
group on ``groups``), a ServiceAccount named without groups gets its own, and a group without a
user is a bad request (k8s.io/apiserver v0.37.2 pkg/endpoints/filters/impersonation/
impersonation.go, mode.go). The kubernetes Python client sends the token over plain HTTP too,
so the emulator knows who asks. On a real cluster (CI_RUNNER_TEST_KUBECONFIG) the same test runs
unchanged.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import config

from tests.support.kube_target import KubeTarget

RBAC = "rbac.authorization.k8s.io/v1"


def _policy(ns: str) -> list[dict[str, Any]]:
    def account(name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": ns}}  # fmt: skip

    def bound(name: str, rules: list[dict[str, Any]], subject: str) -> list[dict[str, Any]]:
        meta = {"name": name, "namespace": ns}
        return [
            {"apiVersion": RBAC, "kind": "Role", "metadata": meta, "rules": rules},
            {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": meta,
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
             "subjects": [{"kind": "ServiceAccount", "name": subject, "namespace": ns}]},
        ]  # fmt: skip

    return [
        account("runner"),
        account("deployer"),
        account("other"),
        *bound("act-as-deployer", [{"apiGroups": [""], "resources": ["serviceaccounts"],
               "resourceNames": ["deployer"], "verbs": ["impersonate"]}], "runner"),
        *bound("deploy", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
               "deployer"),
        *bound("other", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
               "other"),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": ns},
         "data": {"k": "v"}},
    ]  # fmt: skip


Send = Any


@pytest.fixture
def as_runner(kube: KubeTarget, kubectl_bin: str) -> Iterator[Send]:
    """send(method, path, headers, body) -> (status, JSON answer), with the runner's token."""

    def kubectl(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [kubectl_bin, *args], env=kube.env(), input=stdin, text=True,
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip

    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(_policy(kube.namespace)))
    token = kubectl("create", "token", "runner", "--namespace", kube.namespace).strip()
    with config.new_client_from_config(config_file=kube.kubeconfig) as api:

        def send(
            method: str, path: str, headers: dict[str, str], body: Any = None
        ) -> tuple[int, dict[str, Any]]:
            answer = api.rest_client.request(
                method,
                api.configuration.host + path,
                headers={"Accept": "application/json", "Content-Type": "application/json",
                         "Authorization": f"Bearer {token}", **headers},
                body=body,
            )  # fmt: skip
            return answer.status, json.loads(answer.read() or b"{}")

        yield send


def sa(ns: str, name: str) -> str:
    return f"system:serviceaccount:{ns}:{name}"


def test_a_service_account_acts_as_the_one_it_may_impersonate(
    kube: KubeTarget, as_runner: Send
) -> None:
    ns = kube.namespace
    path = f"/api/v1/namespaces/{ns}/configmaps/cm"
    assert as_runner("GET", path, {})[0] == 403  # not the runner's own grant
    status, cm = as_runner("GET", path, {"Impersonate-User": sa(ns, "deployer")})
    assert (status, cm["data"]) == (200, {"k": "v"})
    # The deployer's groups are its own: nothing more than it may itself.
    secrets = f"/api/v1/namespaces/{ns}/secrets"
    assert as_runner("GET", secrets, {"Impersonate-User": sa(ns, "deployer")})[0] == 403


@pytest.mark.parametrize(
    ("headers", "refusal"),
    [
        # 1.36+ (constrained impersonation on by default): the first mode that applies refuses
        # "impersonate-on:<mode>:<verb>" on the request itself; 1.35 and the legacy mode refuse
        # "impersonate" on what is impersonated. Either way: 403, naming the requester.
        ({"Impersonate-User": "OTHER"},
         ('cannot impersonate-on:serviceaccount:get resource "configmaps"',
          'cannot impersonate resource "serviceaccounts"')),
        ({"Impersonate-User": "admin"},
         ('cannot impersonate-on:user-info:get resource "configmaps"',
          'cannot impersonate resource "users"')),
        # A ServiceAccount with groups fits no constrained mode: legacy words on 1.37 too.
        ({"Impersonate-User": "DEPLOYER", "Impersonate-Group": "system:masters"},
         ('cannot impersonate resource "groups" in API group "" at the cluster scope',) * 2),
    ],
)  # fmt: skip
def test_impersonating_anyone_else_is_refused(
    kube: KubeTarget, as_runner: Send, headers: dict[str, str], refusal: tuple[str, str]
) -> None:
    ns = kube.namespace
    named = {"OTHER": sa(ns, "other"), "DEPLOYER": sa(ns, "deployer")}
    headers = {k: named.get(v, v) for k, v in headers.items()}
    status, answer = as_runner("GET", f"/api/v1/namespaces/{ns}/configmaps/cm", headers)
    assert (status, answer["reason"]) == (403, "Forbidden")
    assert f'User "{sa(ns, "runner")}" cannot impersonate' in answer["message"]
    assert any(words in answer["message"] for words in refusal), answer["message"]
    minor = int(str(as_runner("GET", "/version", {})[1].get("minor", "0")).rstrip("+"))
    assert refusal[0 if minor >= 36 else 1] in answer["message"]  # the emulator is v1.35


def test_a_group_without_a_user_is_a_bad_request(kube: KubeTarget, as_runner: Send) -> None:
    status, _ = as_runner(
        "GET", f"/api/v1/namespaces/{kube.namespace}/configmaps/cm",
        {"Impersonate-Group": "system:masters"},
    )  # fmt: skip
    assert status == 400


def test_a_self_subject_access_review_answers_for_the_impersonated(
    kube: KubeTarget, as_runner: Send
) -> None:
    ns = kube.namespace

    def review(verb: str, resource: str, headers: dict[str, str]) -> bool:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"namespace": ns, "verb": verb,
                                                "resource": resource}}}  # fmt: skip
        status, answer = as_runner(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", headers, body
        )
        assert status == 201, answer
        return bool(answer["status"].get("allowed"))

    deployer = {"Impersonate-User": sa(ns, "deployer")}
    assert review("get", "configmaps", deployer)
    assert not review("get", "secrets", deployer)
    assert not review("get", "configmaps", {})  # the runner itself
    assert review("impersonate", "serviceaccounts", {}) is False  # no name: not by name only
