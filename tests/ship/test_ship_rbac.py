"""RBAC, read from the rendered chart and manifests: every call the runner makes is allowed in
the right namespace, nothing else is, and no wildcard appears anywhere."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from tests.ship.shipkit import Render
from tests.support import rbac
from tests.support.charts import Document

ALL = ("get", "list", "watch", "create", "update", "patch", "delete")

# (verb, apiGroup, resource) the runner itself needs in the CICD namespace (and no more: the
# test command fails on a grant no end-to-end test used, tests/support/rbac_exact.py).
CICD_CALLS = [
    *[(v, "", "configmaps") for v in ("get", "create", "update")],
    *[(v, "coordination.k8s.io", "leases") for v in ("get", "create", "update")],
    *[(v, "batch", "jobs") for v in ("get", "watch", "create", "delete")],
    ("list", "", "pods"),
    ("get", "", "pods/log"),
    ("create", "", "events"),
    ("list", "", "events"),
]

# What helm needs in the DEPLOY namespace: release Secrets, common kinds, --wait.
DEPLOY_CALLS = [
    *[(v, "", r) for v in ALL for r in ("secrets", "configmaps", "services", "serviceaccounts")],
    *[(v, "", "persistentvolumeclaims") for v in ALL],
    *[(v, "", "pods") for v in ("get", "list", "watch")],
    *[(v, "apps", r) for v in ALL for r in ("deployments", "statefulsets", "daemonsets")],
    *[(v, "apps", "replicasets") for v in ("get", "list", "watch")],
    *[(v, "batch", r) for v in ALL for r in ("jobs", "cronjobs")],
    *[(v, "networking.k8s.io", r) for v in ALL for r in ("ingresses", "networkpolicies")],
    *[(v, "policy", "poddisruptionbudgets") for v in ALL],
    *[(v, "autoscaling", "horizontalpodautoscalers") for v in ALL],
    ("list", "", "events"),
]

CREATE_NAMESPACE_CALLS = [("get", "", "namespaces"), ("create", "", "namespaces")]

# The Secrets the manifests' runner may touch, by name: its token copy (after RELEASE), and the
# GIT_TOKEN_SECRET and REGISTRY_SECRET kustomization.yaml suggests.
MANIFEST_SECRETS = {
    "ci-runner-example-app-git": ("get", "update"),
    "ci-runner-git-token": ("get",),
    "registry-credentials": ("get",),
}

# (verb, apiGroup, resource, namespace) nobody should get; namespace None is cluster-wide.
REFUSED = [
    ("delete", "", "configmaps", "kube-system"),
    ("get", "", "secrets", "kube-system"),
    ("list", "", "secrets", None),
    ("list", "", "secrets", "cicd"),  # the runner reads its own Secret by name, never lists
    ("*", "", "pods", "cicd"),
    ("delete", "", "namespaces", None),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None),
    ("create", "rbac.authorization.k8s.io", "roles", "cicd"),
    ("create", "", "pods/exec", "cicd"),
    ("impersonate", "", "serviceaccounts", "cicd"),
    ("delete", "", "configmaps", "cicd"),
    ("delete", "coordination.k8s.io", "leases", "cicd"),
]


def check_runner(
    grants: list[rbac.Grant],
    cicd_ns: str,
    deploy_ns: str,
    create_ns: bool,
    secrets: Mapping[str, tuple[str, ...]],
    deployer: list[rbac.Grant] | None = None,
    deployer_name: str = "",
) -> None:
    """``secrets``: the verbs the runner has on each Secret of the CICD namespace, by name;
    any other Secret there, and creating one, it may not touch. ``deployer``: the grants of
    the ServiceAccount ``deployer_name`` of the deploy namespace, which helm acts as: it may do
    what helm needs there and nothing in the CICD namespace; the runner may only act as it
    there."""
    assert deployer is not None and deployer_name, "every app has its deployer"
    missing = [
        (verb, group, res, ns)
        for verb, group, res in CICD_CALLS
        if not rbac.allows(grants, verb, group, res, ns := cicd_ns)
    ] + [
        (verb, group, res, ns)
        for verb, group, res in DEPLOY_CALLS
        if not rbac.allows(deployer, verb, group, res, ns := deploy_ns)
    ]
    assert not missing, f"the runner or its deployer is refused what it needs: {missing}"
    # The runner's one grant in the deploy namespace: to act as its deployer, by name.
    assert rbac.allows(grants, "impersonate", "", "serviceaccounts", deploy_ns, name=deployer_name)
    for verb in ALL:
        assert not rbac.allows(grants, verb, "", "secrets", deploy_ns, name="sh.helm.release.v1")
    acting = [
        (verb, group, res) for verb, group, res in DEPLOY_CALLS
        if rbac.allows(grants, verb, group, res, deploy_ns)
    ]  # fmt: skip
    assert not acting, f"the runner itself may act in the deploy namespace: {acting}"
    for other in ("default", "another-apps-deployer", ""):
        assert not rbac.allows(grants, "impersonate", "", "serviceaccounts", deploy_ns, name=other)
    for resource in ("users", "groups", "userextras", "uids"):
        assert not rbac.allows(grants, "impersonate", "", resource, deploy_ns, name="x")
        assert not rbac.allows(grants, "impersonate", "", resource, None, name="x")
    # The deployer (and so an app's chart) reaches nothing in the CICD namespace.
    reach = [
        (verb, group, res) for verb, group, res in [*CICD_CALLS, *DEPLOY_CALLS]
        if rbac.allows(deployer, verb, group, res, cicd_ns)
    ]  # fmt: skip
    assert not reach, f"the deployer may act in the CICD namespace: {reach}"
    assert not any(rbac.allows(deployer, "impersonate", "", r, ns, name=n)
                   for r in ("serviceaccounts", "users", "groups") for ns in (cicd_ns, deploy_ns)
                   for n in ("x", deployer_name))  # fmt: skip
    granted = [r for r in REFUSED if rbac.allows(deployer, r[0], r[1], r[2], r[3])]
    assert not granted, f"granted to the deployer but should not be: {granted}"
    by_name = {
        (name, verb): rbac.allows(grants, verb, "", "secrets", cicd_ns, name=name)
        for name in [*secrets, "another-apps-git-token", "ci-runner-other-git"]
        for verb in ALL
    }
    assert by_name == {(name, verb): verb in secrets.get(name, ()) for name, verb in by_name}, (
        "Secrets by name only"
    )
    assert not rbac.allows(grants, "create", "", "secrets", cicd_ns, name="")
    for verb, group, res in CREATE_NAMESPACE_CALLS:
        assert rbac.allows(grants, verb, group, res, None) is create_ns
    granted = [r for r in REFUSED if rbac.allows(grants, r[0], r[1], r[2], r[3])]
    assert not granted, f"granted but should not be: {granted}"
    # The deploy namespace gets helm's rights, not the runner's CICD ones (and the reverse).
    assert not rbac.allows(grants, "create", "coordination.k8s.io", "leases", deploy_ns)
    assert not rbac.allows(grants, "delete", "apps", "deployments", cicd_ns)


def deployer_of(docs: list[Document], deploy_ns: str, name: str) -> tuple[list[rbac.Grant], str]:
    """The deployer's grants and name, as check_runner takes them; its ServiceAccount has no
    token of its own (only ever impersonated)."""
    (account,) = [
        d for d in docs
        if d["kind"] == "ServiceAccount" and d["metadata"] == {**d["metadata"], "name": name,
                                                                "namespace": deploy_ns}
    ]  # fmt: skip
    assert account["automountServiceAccountToken"] is False
    return rbac.rules_from_documents(docs, (deploy_ns, name)), name


def test_manifests_grant_exactly_what_the_runner_needs(manifest_docs: list[Document]) -> None:
    grants = rbac.rules_from_documents(manifest_docs)
    deployer = deployer_of(manifest_docs, "example-app", "ci-runner-deployer")
    check_runner(grants, "cicd", "example-app", True, MANIFEST_SECRETS, *deployer)
    (settings,) = [d for d in manifest_docs if d["kind"] == "ConfigMap"]
    assert settings["data"]["DEPLOYER"] == "ci-runner-deployer"


@pytest.mark.helm
def test_chart_with_one_app_grants_what_the_runner_needs(render: Render) -> None:
    docs = render("one-app")
    grants = rbac.rules_from_documents(docs, ("cicd", "ci-web"))
    deployer = deployer_of(docs, "web", "ci-web-deployer")
    check_runner(grants, "cicd", "web", True, {}, *deployer)
    env = [
        e for d in docs if d["kind"] == "CronJob"
        for e in d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    ]  # fmt: skip
    assert {"name": "DEPLOYER", "value": "ci-web-deployer"} in env


@pytest.mark.helm
def test_chart_release_namespace_is_the_cicd_namespace(render: Render) -> None:
    docs = render("private", release="ops", namespace="tools")
    grants = rbac.rules_from_documents(docs, ("tools", "ops-billing"))
    secrets = {"billing-git-token": ("get",), "registry-push": ("get",)}
    deployer = deployer_of(docs, "billing", "ops-billing-deployer")
    check_runner(grants, "tools", "billing", True, secrets, *deployer)


@pytest.mark.helm
def test_chart_with_a_github_app_creates_the_token_copy_the_runner_only_updates(
    render: Render,
) -> None:
    docs = render("github-app")
    grants = rbac.rules_from_documents(docs, ("cicd", "ci-billing"))
    copy = "ci-runner-billing-git"
    deployer = deployer_of(docs, "billing", "ci-billing-deployer")
    check_runner(grants, "cicd", "billing", True, {copy: ("get", "update")}, *deployer)
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    assert secret["metadata"]["name"] == copy and "data" not in secret


@pytest.mark.helm
def test_chart_apps_are_isolated_from_each_other(render: Render) -> None:
    docs = render("three-apps")
    runners = [("cicd", "ci-api"), ("cicd", "ci-web"), ("cicd", "ci-worker")]
    deployers = [("api", "ci-api-deployer"), ("web", "ci-web-deployer"),
                 ("web", "ci-worker-deployer")]  # fmt: skip
    assert sorted(rbac.service_accounts(docs)) == sorted(runners + deployers)
    web = rbac.rules_from_documents(docs, ("cicd", "ci-web"))
    api = rbac.rules_from_documents(docs, ("cicd", "ci-api"))
    check_runner(web, "cicd", "web", False, {}, *deployer_of(docs, "web", "ci-web-deployer"))
    check_runner(api, "cicd", "api", False, {}, *deployer_of(docs, "api", "ci-api-deployer"))
    # Each runner may act only as its own app's deployer, even in a shared namespace.
    for runner, mine in (("ci-web", "ci-web-deployer"), ("ci-worker", "ci-worker-deployer")):
        grants = rbac.rules_from_documents(docs, ("cicd", runner))
        may = {
            n for ns, n in deployers
            if rbac.allows(grants, "impersonate", "", "serviceaccounts", ns, name=n)
        }  # fmt: skip
        assert may == {mine}, runner
    api_deployer = rbac.rules_from_documents(docs, ("api", "ci-api-deployer"))
    web_deployer = rbac.rules_from_documents(docs, ("web", "ci-web-deployer"))
    assert not rbac.allows(api_deployer, "create", "apps", "deployments", "web")
    assert not rbac.allows(web_deployer, "get", "", "secrets", "api")
    # worker's deployRules override narrows what its helm may do in its namespace
    worker = rbac.rules_from_documents(docs, ("web", "ci-worker-deployer"))
    assert rbac.allows(worker, "create", "apps", "deployments", "web")
    assert not rbac.allows(worker, "create", "", "services", "web")
    worker_runner = rbac.rules_from_documents(docs, ("cicd", "ci-worker"))
    assert rbac.allows(worker_runner, "create", "batch", "jobs", "cicd"), "its CICD rights stay"


@pytest.mark.helm
@pytest.mark.parametrize("values", ["one-app", "three-apps", "private"])
def test_chart_has_no_wildcards(render: Render, values: str) -> None:
    assert rbac.wildcards(render(values)) == []


def test_manifests_have_no_wildcards(manifest_docs: list[Document]) -> None:
    assert rbac.wildcards(manifest_docs) == []


# --- the checker itself: it must see through wildcards and binding scopes ---------------------


def role(kind: str, name: str, rules: list[Document], namespace: str | None = None) -> Document:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "rules": rules}


def binding(kind: str, name: str, role_kind: str, namespace: str | None = None) -> Document:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    subject = {"kind": "ServiceAccount", "name": "sa", "namespace": "cicd"}
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"kind": role_kind, "name": name},
        "subjects": [subject],
    }


def test_checker_honours_wildcards_scopes_and_subresources() -> None:
    docs = [
        {"kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "cicd"}},
        role("Role", "wild", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}], "cicd"),
        binding("RoleBinding", "wild", "Role", "cicd"),
        role(
            "ClusterRole",
            "logs",
            [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
        ),
        binding("RoleBinding", "logs", "ClusterRole", "apps"),
        role(
            "ClusterRole",
            "ns",
            [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces"],
                    "verbs": ["get"],
                    "resourceNames": ["one"],
                }
            ],
        ),
        binding("ClusterRoleBinding", "ns", "ClusterRole"),
        role(
            "Role",
            "unbound",
            [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
            "other",
        ),
    ]
    grants = rbac.rules_from_documents(docs)
    assert rbac.allows(grants, "delete", "apps", "deployments", "cicd")
    assert not rbac.allows(grants, "delete", "apps", "deployments", "apps")
    assert rbac.allows(grants, "get", "", "pods", "apps", subresource="log")
    assert not rbac.allows(grants, "get", "", "pods", "apps")
    assert rbac.allows(grants, "get", "", "namespaces", None, name="one")
    assert not rbac.allows(grants, "get", "", "namespaces", None)
    assert not rbac.allows(grants, "list", "", "secrets", "other"), "not bound to sa"
    assert rbac.wildcards(docs) == [f"Role wild: {f}" for f in ("apiGroups", "resources", "verbs")]


def test_the_request_log_check_flags_what_is_not_granted(render: Render) -> None:
    """The e2e suite ends every test with rbac.refused over the emulator's request log; it must
    catch a call the Roles do not grant, not only pass."""

    @dataclass(frozen=True)
    class Record:
        verb: str
        api_group: str
        resource: str
        namespace: str | None
        subresource: str | None = None
        name: str | None = None

    granted = rbac.Granted.from_documents("the chart", render("one-app"), "cicd")
    fine = [
        Record("create", "batch", "jobs", "t-cicd"),
        Record("get", "", "pods", "t-cicd", "log"),
        Record("create", "", "secrets", "t-app"),
        Record("create", "", "namespaces", None),
    ]
    assert rbac.refused(fine, granted, "t-cicd", "t-app") == []
    wrong = [
        Record("delete", "", "configmaps", "kube-system"),
        Record("list", "", "secrets", None),
        Record("create", "rbac.authorization.k8s.io", "clusterroles", None),
        Record("create", "", "pods", "t-cicd", "exec"),
    ]
    assert len(rbac.refused(wrong, granted, "t-cicd", "t-app")) == len(wrong)


def test_the_exactness_check_names_a_grant_nobody_used() -> None:
    from tests.support.rbac_exact import unused

    grant = rbac.Grant("cicd", ("",), ("configmaps",), ("get", "patch"), (), "Role ci-runner")
    granted = rbac.Granted("the chart", [grant], "cicd", "app")
    assert unused(granted, {("get", "", "configmaps")}) == [
        "the chart grants, and no test used: patch core/configmaps"
    ]
    assert unused(granted, {("get", "", "configmaps"), ("patch", "", "configmaps")}) == []


# --- fleet mode --------------------------------------------------------------------------------

# Everything the fleet's ServiceAccount may do, and nothing more: (verb, group, resource, name).
FLEET_GRANTS = {
    ("list", "batch", "cronjobs", ""),
    ("list", "batch", "jobs", ""),
    ("create", "batch", "jobs", ""),
    ("list", "", "configmaps", ""),
    ("get", "", "configmaps", "ci-fleet"),
    ("update", "", "configmaps", "ci-fleet"),
    ("get", "", "secrets", "fleet-github-token"),
    ("create", "", "events", ""),
}


@pytest.mark.helm
def test_chart_fleet_grants_exactly_what_the_fleet_needs(render: Render) -> None:
    docs = render("fleet")
    fleet = rbac.rules_from_documents(docs, ("cicd", "ci-fleet"))
    grants = {
        (verb, group, res, name)
        for g in fleet
        for verb in g.verbs
        for group in g.api_groups
        for res in g.resources
        for name in (g.resource_names or ("",))
    }
    assert grants == FLEET_GRANTS
    assert {g.namespace for g in fleet} == {"cicd"}
    # not another Secret, not its own record's neighbours, no deploy, no build
    assert not rbac.allows(fleet, "get", "", "secrets", "cicd", name="registry-push")
    assert not rbac.allows(fleet, "update", "", "configmaps", "cicd", name="ci-runner-web")
    assert not rbac.allows(fleet, "create", "", "configmaps", "cicd", name="")
    assert not rbac.allows(fleet, "create", "apps", "deployments", "web")
    assert not rbac.allows(fleet, "create", "coordination.k8s.io", "leases", "cicd")
    # each app keeps its own identity; the per-app CronJobs are templates now
    web = rbac.rules_from_documents(docs, ("cicd", "ci-web"))
    check_runner(web, "cicd", "web", False, {}, *deployer_of(docs, "web", "ci-web-deployer"))
    cronjobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronJob"}
    assert {n: c["spec"].get("suspend", False) for n, c in cronjobs.items()} == {
        "ci-web": True,
        "ci-api": True,
        "ci-worker": True,
        "ci-fleet": False,
    }
    assert rbac.wildcards(docs) == []
    # worker is suspended by its values, not only by fleet mode: the fleet leaves it alone
    suspended = {
        n: (c["metadata"].get("annotations") or {}).get("ci-runner.io/suspended")
        for n, c in cronjobs.items()
    }
    assert suspended == {"ci-web": None, "ci-api": None, "ci-worker": "true", "ci-fleet": None}


# With a GitHub App: its key Secret instead of the token's, and get+update of the Secret the chart
# creates for its installation token, by name.
FLEET_APP_GRANTS = (FLEET_GRANTS - {("get", "", "secrets", "fleet-github-token")}) | {
    ("get", "", "secrets", "fleet-github-app"),
    ("get", "", "secrets", "ci-fleet-token"),
    ("update", "", "secrets", "ci-fleet-token"),
}


@pytest.mark.helm
def test_chart_fleet_with_an_app_grants_its_kept_token_secret_by_name(render: Render) -> None:
    docs = render("fleet", "fleet-app")
    fleet = rbac.rules_from_documents(docs, ("cicd", "ci-fleet"))
    grants = {
        (verb, group, res, name)
        for g in fleet
        for verb in g.verbs
        for group in g.api_groups
        for res in g.resources
        for name in (g.resource_names or ("",))
    }
    assert grants == FLEET_APP_GRANTS
    assert not rbac.allows(fleet, "get", "", "secrets", "cicd", name="fleet-github-token")
    assert not rbac.allows(fleet, "create", "", "secrets", "cicd", name="")
    (kept,) = [
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "ci-fleet-token"
    ]
    assert "data" not in kept and "stringData" not in kept  # created empty: the fleet fills it
    (cronjob,) = [d for d in docs if d["kind"] == "CronJob" and d["metadata"]["name"] == "ci-fleet"]
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FLEET_APP_SECRET"] == "fleet-github-app"
    assert env["FLEET_APP_TOKEN_SECRET"] == "ci-fleet-token"
    assert "FLEET_TOKEN_SECRET" not in env
    token_mode = render("fleet")
    assert not [d for d in token_mode if d["metadata"]["name"] == "ci-fleet-token"]


@pytest.mark.helm
def test_chart_fleet_is_off_by_default(render: Render) -> None:
    docs = render("three-apps")
    assert not [d for d in docs if "fleet" in d["metadata"]["name"]]
    suspended = {
        d["metadata"]["name"]: d["spec"]["suspend"] for d in docs if d["kind"] == "CronJob"
    }
    assert suspended == {"ci-web": False, "ci-api": False, "ci-worker": True}
