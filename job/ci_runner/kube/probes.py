"""``ci-runner check``, the Kubernetes side: the API answers, both namespaces, every permission a
run needs (``NEEDS``, kept equal to the chart's CICD Role by a test) and the Secrets a build
references. Nothing is written: the only POSTs are SelfSubjectAccessReviews, which the API server
answers without storing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ..checklist import Result, failed, passed
from ..config import Settings
from ..errors import ConfigError, KubernetesError, NotFound
from . import client as kube
from .build_job import check_secrets
from .client import NAMESPACES_PATH, Kube, Obj, namespace_problem

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
CICD, DEPLOY, CLUSTER = "CICD_NS", "DEPLOY_NS", "cluster"


@dataclass(frozen=True)
class Need:
    """Permissions a run needs: ``verbs`` on ``resource`` of ``group`` in the namespace of
    ``scope`` (CICD_NS, DEPLOY_NS) or cluster-wide, when ``when(settings)``."""

    scope: str
    group: str
    resource: str
    """With its subresource: "pods/log"."""
    verbs: tuple[str, ...]
    why: str
    when: Callable[[Settings], bool] = lambda s: True
    names: Callable[[Settings], tuple[str, ...]] = lambda s: ()
    """The objects it is asked for by name (the Role grants it for those names only); none:
    for any object of the kind."""
    as_deployer: bool = False
    """Asked as DEPLOYER (impersonated) when it is set: what helm does as that account."""


def _keeps_token_secret(s: Settings) -> bool:
    """Whether the runner keeps its own token copy (GIT_TOKEN without GIT_TOKEN_SECRET, or a
    GitHub App's installation token)."""
    return s.token_secret_name is not None and not s.git_token_secret


def _checked_secrets(s: Settings) -> tuple[str, ...]:
    return tuple(name for name in (s.registry_secret, s.git_token_secret) if name)


def _token_copy(s: Settings) -> tuple[str, ...]:
    return (s.token_secret_name,) if s.token_secret_name and _keeps_token_secret(s) else ()


# The one list of what the runner asks of the API: CICD_NS is exactly the chart's CICD Role
# (charts/ci-runner/templates/rbac.yaml; a test keeps them equal); in DEPLOY_NS what helm needs
# for its release records (the app's own kinds are the chart's deployRules), which with
# DEPLOYER is the deployer's and the runner's only grant there is to act as it; cluster-wide
# what creating a missing DEPLOY_NS needs.
NEEDS: tuple[Need, ...] = (
    Need(CICD, "", "configmaps", ("get", "create", "update"), "the state ConfigMap"),
    Need(CICD, "coordination.k8s.io", "leases", ("get", "create", "update"), "the run's Lease"),
    Need(CICD, "batch", "jobs", ("get", "watch", "create", "delete"), "the Kaniko build Job"),
    Need(CICD, "", "pods", ("list",), "the build pod's state while it starts"),
    Need(CICD, "", "pods/log", ("get",), "the failed build's log"),
    Need(
        CICD,
        "",
        "secrets",
        ("get",),
        "checking REGISTRY_SECRET and GIT_TOKEN_SECRET",
        lambda s: bool(_checked_secrets(s)),
        _checked_secrets,
    ),
    Need(
        CICD,
        "",
        "secrets",
        ("get", "update"),
        "the runner's copy of the GitHub token for the build pod",
        _keeps_token_secret,
        _token_copy,
    ),
    Need(CICD, "", "events", ("create", "list"), "Events of the run and of the build"),
    Need(
        DEPLOY,
        "",
        "serviceaccounts",
        ("impersonate",),
        "helm acting as DEPLOYER",
        lambda s: s.deployer is not None,
        lambda s: (s.deployer,) if s.deployer else (),
    ),
    Need(
        DEPLOY,
        "",
        "secrets",
        ("get", "list", "create", "update", "delete"),
        "helm's release records",
        as_deployer=True,
    ),
    Need(
        CLUSTER,
        "",
        "namespaces",
        ("get", "create"),
        "helm --create-namespace",
        lambda s: s.create_namespace,
    ),
)


def scope_namespace(scope: str, s: Settings) -> str:
    """The namespace a scope stands for ("" cluster-wide)."""
    return {CICD: s.cicd_namespace, DEPLOY: s.deploy_namespace}.get(scope, "")


def may(
    api: Kube,
    verb: str,
    group: str,
    resource: str,
    namespace: str,
    name: str = "",
    acting_as: str | None = None,
) -> bool:
    """Whether the API server allows us ``verb`` on ``resource`` in ``namespace`` ("":
    cluster-wide), on the object ``name`` if given: a SelfSubjectAccessReview, which every
    authenticated user may create. ``acting_as``: asked as that user (impersonated), which
    the API server refuses (KubernetesError, 403) unless we may impersonate it."""
    kind, _, sub = resource.partition("/")
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": kind}
    if sub:
        attributes["subresource"] = sub
    if name:
        attributes["name"] = name
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    doing = f"asking whether we may {verb} {resource} in {namespace or 'the cluster'}"
    if acting_as:
        doing += f" as {acting_as}"
    answer = api.request("POST", SSAR_PATH, doing, body=body, acting_as=acting_as)
    return bool((answer.get("status") or {}).get("allowed"))


def _refused(
    api: Kube, s: Settings, needs: list[Need], namespace: str, acting_as: str | None = None
) -> list[str]:
    """The permissions of ``needs`` the API server refuses, as readable parts of a line."""
    refused = []
    for need in needs:
        group = f".{need.group}" if need.group else ""
        name, _, sub = need.resource.partition("/")
        what = name + group + (f"/{sub}" if sub else "")
        for name in need.names(s) or ("",):
            missing = [
                v
                for v in need.verbs
                if not may(api, v, need.group, need.resource, namespace, name, acting_as)
            ]
            if missing:
                named = f" {name!r}" if name else ""
                refused.append(f"{','.join(missing)} {what}{named} ({need.why})")
    return refused


_FIX = (
    "grant them (the chart's Roles do: charts/ci-runner/templates/rbac.yaml; "
    "`kubectl auth can-i --list` shows what you have)"
)


def permissions(api: Kube, s: Settings) -> list[Result]:
    """Every permission of NEEDS this configuration uses, one line per namespace, and with
    DEPLOYER one line for what helm may do as the deployer."""
    results = []
    for scope in (CICD, DEPLOY, CLUSTER):
        needs = [n for n in NEEDS if n.scope == scope and n.when(s)]
        deployed = [n for n in needs if n.as_deployer and s.deployer is not None]
        needs = [n for n in needs if n not in deployed]
        namespace = scope_namespace(scope, s)
        item = f"permissions in {scope} {namespace}" if namespace else "permissions cluster-wide"
        if needs:
            try:
                refused = _refused(api, s, needs, namespace)
            except KubernetesError as e:
                results.append(failed(item, e))
                continue
            count = sum(len(n.verbs) * max(1, len(n.names(s))) for n in needs)
            if refused:
                results.append(failed(item, f"refused: {'; '.join(refused)}; {_FIX}"))
            else:
                results.append(passed(item, f"all {count} granted"))
        if deployed:
            results.append(deployer_line(api, s, deployed))
    return results


def deployer_line(api: Kube, s: Settings, needs: list[Need]) -> Result:
    """helm acts as DEPLOYER: we may impersonate it (the line above asked), and as it (an
    impersonated SelfSubjectAccessReview) helm may keep its release records."""
    assert s.deployer_user is not None
    item = f"deployer {s.deployer} in {DEPLOY} {s.deploy_namespace}"
    try:
        if not may(api, "impersonate", "", "serviceaccounts", s.deploy_namespace, s.deployer or ""):
            return failed(
                item,
                f"this identity may not act as it: grant impersonate on serviceaccounts "
                f"named {s.deployer} in {s.deploy_namespace} (the chart's "
                "<release>-<app>-impersonate Role does), or unset DEPLOYER",
            )
        refused = _refused(api, s, needs, s.deploy_namespace, s.deployer_user)
    except KubernetesError as e:
        return failed(item, e)
    if refused:
        return failed(item, f"as {s.deployer_user}, refused: {'; '.join(refused)}; {_FIX}")
    count = sum(len(n.verbs) for n in needs)
    return passed(
        item, f"helm acts as {s.deployer_user} (impersonated); as it, all {count} granted"
    )


def namespace(api: Kube, setting: str, name: str, s: Settings) -> Result:
    """The namespace exists (or helm may create it), and a CICD namespace lets Kaniko run."""
    item = f"{setting} {name}"
    try:
        found: Obj | None = api.request(
            "GET", f"{NAMESPACES_PATH}/{name}", f"reading namespace {name}"
        )
    except NotFound:
        found = None
    except KubernetesError as e:
        if e.status != 403:
            return failed(item, e)
        return passed(
            item,
            "cannot be read (no permission to get namespaces); the permission "
            "checks below tell whether the runner may work there",
        )
    problem = namespace_problem(setting, name, found is not None, s.create_namespace)
    if problem is not None:
        return failed(item, problem)
    if found is None:
        labelled = f", labelled {PSA_ENFORCE}=baseline" if setting == CICD else ""
        return passed(
            item, f"does not exist yet; the runner creates it{labelled} (CREATE_NAMESPACE=true)"
        )
    labels = (found.get("metadata") or {}).get("labels") or {}
    level = labels.get(PSA_ENFORCE) or "not set"
    if setting == CICD and level == "restricted":
        return failed(
            item,
            f"Pod Security level {level!r} refuses the Kaniko build pod (it "
            f"runs as root): `kubectl label namespace {name} --overwrite "
            f"{PSA_ENFORCE}=baseline`",
        )
    return passed(item, f"exists (Pod Security enforce: {level})")


def secrets_line(api: Kube, s: Settings) -> Result:
    """The Secrets a build Job references exist in CICD_NS with their keys."""
    item = f"Secrets in {s.cicd_namespace}"
    wanted = [
        (env, name, key)
        for env, name, key in (
            ("REGISTRY_SECRET", s.registry_secret, ".dockerconfigjson"),
            ("GIT_TOKEN_SECRET", s.git_token_secret, "token"),
        )
        if name
    ]
    if not wanted:
        return passed(
            item,
            "none referenced (REGISTRY_SECRET and GIT_TOKEN_SECRET unset: Kaniko "
            "pushes without registry credentials)",
        )
    try:
        check_secrets(api, s)
    except ConfigError as e:
        fix = (
            f"create it in {s.cicd_namespace} (`kubectl create secret docker-registry ...` "
            f"for REGISTRY_SECRET, `kubectl create secret generic NAME --from-literal="
            f"token=...` for GIT_TOKEN_SECRET)"
        )
        return failed(item, f"{'; '.join(e.problems)}: {fix}")
    except KubernetesError as e:
        return failed(item, e)
    return passed(item, "; ".join(f"{env} {name} has key {key}" for env, name, key in wanted))


def check_kubernetes(s: Settings) -> list[Result]:
    """The API answers, then the namespaces, the permissions and the Secrets."""
    item = "Kubernetes API"
    try:
        api = kube.connect(s.verify_ssl, s.api_timeout)
    except ConfigError as e:
        return [failed(item, e)]
    with api:
        try:
            version = api.request("GET", "/version", "reading the server version")
        except KubernetesError as e:
            result = failed(item, e)
            skipped = "; namespaces, permissions and Secrets were not checked"
            return [replace(result, message=result.message + skipped)]
        host = api.api.configuration.host
        results = [passed(item, f"{version.get('gitVersion', 'unknown version')} at {host}")]
        results += [
            namespace(api, CICD, s.cicd_namespace, s),
            namespace(api, DEPLOY, s.deploy_namespace, s),
        ]
        results += permissions(api, s)
        results.append(secrets_line(api, s))
    return results
