"""What a ServiceAccount may do, read from rendered Kubernetes YAML (no cluster needed).

Pure functions over the documents ``helm template`` or ``kubectl kustomize`` print:
``rules_from_documents`` collects the Roles/ClusterRoles bound to the runner's ServiceAccount,
``allows`` answers one request the way the Kubernetes RBAC authorizer would (rules are additive;
``*`` is honoured so that a wildcard is caught, not hidden). ``charts.py`` renders the
documents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tests.support.charts import Document

ServiceAccountRef = tuple[str, str]
"""(namespace, name) of a ServiceAccount."""


@dataclass(frozen=True)
class Grant:
    """One PolicyRule granted in one namespace (``None``: cluster-wide, a ClusterRoleBinding)."""

    namespace: str | None
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...]
    source: str
    """Which binding and role granted it, for error messages."""


def _kinds(docs: Iterable[Document], kind: str) -> list[Document]:
    return [d for d in docs if d and d.get("kind") == kind]


def service_accounts(docs: Sequence[Document]) -> list[ServiceAccountRef]:
    """The ServiceAccounts the documents create, as (namespace, name)."""
    return [
        (sa["metadata"].get("namespace", "default"), sa["metadata"]["name"])
        for sa in _kinds(docs, "ServiceAccount")
    ]


def impersonated(docs: Sequence[Document]) -> set[str]:
    """The names of the ServiceAccounts some Role lets someone impersonate (the deployers)."""
    return {
        name
        for role in [*_kinds(docs, "Role"), *_kinds(docs, "ClusterRole")]
        for rule in role.get("rules") or []
        if "impersonate" in (rule.get("verbs") or []) and "serviceaccounts" in rule["resources"]
        for name in rule.get("resourceNames") or []
    }


def rules_from_documents(
    docs: Sequence[Document], service_account: ServiceAccountRef | None = None
) -> list[Grant]:
    """Every rule bound to the runner's ServiceAccount by the documents' (Cluster)RoleBindings.

    ``service_account`` defaults to the only ServiceAccount in the documents that nobody
    impersonates (the runner, not its deployer); a chart with several apps has one per app, so
    name the one you mean. A binding to a role the documents do not contain is an error: the
    grant could not be checked.
    """
    if service_account is None:
        deployers = impersonated(docs)
        found = [sa for sa in service_accounts(docs) if sa[1] not in deployers]
        if len(found) != 1:
            raise ValueError(f"expected one ServiceAccount, found {found}: pass service_account")
        service_account = found[0]
    sa_ns, sa_name = service_account
    roles = {
        (r["metadata"].get("namespace"), r["metadata"]["name"]): r for r in _kinds(docs, "Role")
    }
    cluster_roles = {r["metadata"]["name"]: r for r in _kinds(docs, "ClusterRole")}
    grants: list[Grant] = []
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for binding in _kinds(docs, kind):
            subjects = binding.get("subjects") or []
            if not any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == sa_name
                and s.get("namespace", binding["metadata"].get("namespace")) == sa_ns
                for s in subjects
            ):
                continue
            namespace = binding["metadata"].get("namespace") if kind == "RoleBinding" else None
            ref = binding["roleRef"]
            if ref["kind"] == "Role":
                role = roles.get((namespace, ref["name"]))
            else:
                role = cluster_roles.get(ref["name"])
            if role is None:
                raise ValueError(f"{kind} {binding['metadata']['name']} refers to a missing {ref}")
            source = f"{kind} {binding['metadata']['name']} -> {ref['kind']} {ref['name']}"
            for rule in role.get("rules") or []:
                grants.append(
                    Grant(
                        namespace=namespace,
                        api_groups=tuple(rule.get("apiGroups") or ()),
                        resources=tuple(rule.get("resources") or ()),
                        verbs=tuple(rule.get("verbs") or ()),
                        resource_names=tuple(rule.get("resourceNames") or ()),
                        source=source,
                    )
                )
    return grants


def allows(
    rules: Iterable[Grant],
    verb: str,
    api_group: str,
    resource: str,
    namespace: str | None,
    subresource: str | None = None,
    name: str | None = None,
) -> bool:
    """Would these rules let the request through?

    ``resource`` may carry its subresource ("pods/log") or take it in ``subresource``.
    ``namespace=None`` is a cluster-scoped request (or one across all namespaces), which only a
    ClusterRoleBinding can allow. A rule limited by resourceNames allows only a request for one
    of those names.
    """
    if subresource:
        resource = f"{resource}/{subresource}"
    for grant in rules:
        if grant.namespace is not None and grant.namespace != namespace:
            continue
        if verb not in grant.verbs and "*" not in grant.verbs:
            continue
        if api_group not in grant.api_groups and "*" not in grant.api_groups:
            continue
        if not _resource_matches(grant.resources, resource):
            continue
        if grant.resource_names and name not in grant.resource_names:
            continue
        return True
    return False


def _resource_matches(granted: Sequence[str], resource: str) -> bool:
    if resource in granted or "*" in granted:
        return True
    main, _, sub = resource.partition("/")
    return bool(sub) and (f"{main}/*" in granted or f"*/{sub}" in granted)


def wildcards(docs: Sequence[Document]) -> list[str]:
    """Every ``*`` in any Role or ClusterRole, as "Kind name: field" (empty when there is none)."""
    found = []
    for doc in docs:
        if not doc or doc.get("kind") not in ("Role", "ClusterRole"):
            continue
        for rule in doc.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                if any("*" in str(v) for v in rule.get(field) or ()):
                    found.append(f"{doc['kind']} {doc['metadata']['name']}: {field}")
    return found


@dataclass(frozen=True)
class Granted:
    """What one rendering (the chart, or the manifests) grants the runner, and where."""

    source: str
    grants: list[Grant]
    cicd_namespace: str
    deploy_namespace: str
    renamed: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """A test's object names as this rendering names them (the manifests name the token copy
    after their own RELEASE): a request for the one is checked as for the other."""
    deployer: str = ""
    """The ServiceAccount of the deploy namespace the runner may impersonate ("": none)."""
    deployer_grants: list[Grant] = dataclasses.field(default_factory=list)
    """What the deployer may do: everything helm does in the deploy namespace."""

    @classmethod
    def from_documents(
        cls,
        source: str,
        docs: Sequence[Document],
        cicd_namespace: str,
        renamed: Mapping[str, str] | None = None,
    ) -> Granted:
        """Read the runner's grants; the deploy namespace is the other one a Role sits in."""
        grants = rules_from_documents(docs)
        others = {g.namespace for g in grants if g.namespace is not None} - {cicd_namespace}
        if len(others) != 1:
            raise ValueError(f"{source}: expected one deploy namespace, found {sorted(others)}")
        deploy_namespace = others.pop()
        acting = sorted(
            name
            for g in grants
            if g.namespace == deploy_namespace and "impersonate" in g.verbs
            for name in g.resource_names
        )
        if len(acting) > 1:
            raise ValueError(f"{source}: the runner may impersonate {acting}, not one deployer")
        deployer = acting[0] if acting else ""
        deployer_grants = (
            rules_from_documents(docs, (deploy_namespace, deployer)) if deployer else []
        )
        return cls(source, grants, cicd_namespace, deploy_namespace, dict(renamed or {}),
                   deployer, deployer_grants)  # fmt: skip


def refused(
    requests: Iterable[object], granted: Granted, cicd_namespace: str, deploy_namespace: str
) -> list[str]:
    """Requests (emulator RequestRecords) that ``granted`` would refuse, as readable lines.

    The requests' namespaces are those of a test; they are mapped onto the rendering's: the
    test's CICD namespace onto its CICD namespace, the test's deploy namespace onto its deploy
    namespace. A request in any other namespace is refused outright. Discovery and other
    non-resource paths are open to every authenticated user (system:discovery) and skipped.
    When the rendering has a deployer, what is done in the deploy namespace is the deployer's
    to do (helm acts as it: with DEPLOYER set, and as the chart sets it); a request made as
    someone (``impersonating``) needs the runner's ``impersonate`` on that ServiceAccount.
    """
    deploy_user_prefix = f"system:serviceaccount:{deploy_namespace}:"
    mapping = {
        cicd_namespace: granted.cicd_namespace,
        deploy_namespace: granted.deploy_namespace,
        None: None,
    }
    lines = []
    for r in requests:
        resource = getattr(r, "resource", None)
        if not resource:
            continue
        namespace = getattr(r, "namespace", None)
        verb = getattr(r, "verb", "")
        group = getattr(r, "api_group", "")
        sub = getattr(r, "subresource", None)
        what = f"{verb} {group or 'core'}/{resource}{'/' + sub if sub else ''} in {namespace}"
        name = getattr(r, "name", None)
        name = granted.renamed.get(name, name) if name else name
        acting_as = getattr(r, "impersonating", "")
        if acting_as:
            account = acting_as.removeprefix(deploy_user_prefix)
            account = granted.renamed.get(account, account)
            if not acting_as.startswith(deploy_user_prefix) or not allows(
                granted.grants, "impersonate", "", "serviceaccounts",
                granted.deploy_namespace, None, account,
            ):  # fmt: skip
                lines.append(f"{granted.source} does not grant: impersonate {acting_as}")
        grants = granted.grants
        if granted.deployer and namespace == deploy_namespace:
            grants, what = granted.deployer_grants, f"{what} (as the deployer)"
        if namespace not in mapping or not allows(
            grants, verb, group, resource, mapping[namespace], sub, name
        ):
            lines.append(f"{granted.source} does not grant: {what}")
    return sorted(set(lines))
