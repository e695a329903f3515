"""The resource table: the kinds the emulator serves, and the discovery documents built from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One served resource type."""

    group: str
    """API group, "" for core."""
    version: str
    name: str
    """Plural resource name, as in URLs."""
    kind: str
    namespaced: bool
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    singular: str = ""

    @property
    def api_version(self) -> str:
        """``group/version``, or just the version for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def has_status(self) -> bool:
        """Whether the kind has a status subresource."""
        return "status" in self.subresources

    @property
    def singular_name(self) -> str:
        """The singular name discovery advertises."""
        return self.singular or self.kind.lower()


def _r(
    group: str,
    version: str,
    name: str,
    kind: str,
    namespaced: bool = True,
    sub: tuple[str, ...] = (),
    short: tuple[str, ...] = (),
    cats: tuple[str, ...] = (),
) -> Resource:
    return Resource(group, version, name, kind, namespaced, sub, short, cats)


ALL = ("all",)
RESOURCES: tuple[Resource, ...] = (
    _r("", "v1", "namespaces", "Namespace", False, ("status", "finalize"), ("ns",)),
    _r("", "v1", "nodes", "Node", False, ("status",), ("no",)),
    _r("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _r("", "v1", "secrets", "Secret"),
    _r("", "v1", "pods", "Pod", sub=("status", "log"), short=("po",), cats=ALL),
    _r("", "v1", "services", "Service", sub=("status",), short=("svc",), cats=ALL),
    _r("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _r("", "v1", "events", "Event", short=("ev",)),
    _r(
        "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", sub=("status",), short=("pvc",)
    ),
    _r("", "v1", "endpoints", "Endpoints", short=("ep",)),
    _r("apps", "v1", "deployments", "Deployment", sub=("status",), short=("deploy",), cats=ALL),
    _r("apps", "v1", "replicasets", "ReplicaSet", sub=("status",), short=("rs",), cats=ALL),
    _r("apps", "v1", "statefulsets", "StatefulSet", sub=("status",), short=("sts",), cats=ALL),
    _r("apps", "v1", "daemonsets", "DaemonSet", sub=("status",), short=("ds",), cats=ALL),
    _r("batch", "v1", "jobs", "Job", sub=("status",), cats=ALL),
    _r("batch", "v1", "cronjobs", "CronJob", sub=("status",), short=("cj",), cats=ALL),
    _r("coordination.k8s.io", "v1", "leases", "Lease"),
    _r("events.k8s.io", "v1", "events", "Event", short=("ev",)),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _r("networking.k8s.io", "v1", "ingresses", "Ingress", sub=("status",), short=("ing",)),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
    _r(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        sub=("status",),
        short=("pdb",),
    ),
    _r(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        sub=("status",),
        short=("hpa",),
        cats=ALL,
    ),
)
"""Every served resource. Adding a kind is one line here."""

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def lookup(group: str, version: str, name: str) -> Resource | None:
    """The resource served at /apis/<group>/<version>/<name> (or /api/v1/<name>)."""
    for res in RESOURCES:
        if res.group == group and res.version == version and res.name == name:
            return res
    return None


def find(api_version: str, kind_or_resource: str) -> Resource | None:
    """The resource of an apiVersion and a kind, a plural name or a singular name."""
    group, _, version = api_version.rpartition("/")
    wanted = kind_or_resource.lower()
    for res in RESOURCES:
        if (
            res.group == group
            and res.version == version
            and wanted
            in (
                res.name,
                res.kind.lower(),
                res.singular_name,
            )
        ):
            return res
    return None


def group_versions() -> dict[str, list[str]]:
    """Served versions per non-core group, in table order."""
    out: dict[str, list[str]] = {}
    for res in RESOURCES:
        if res.group and res.version not in out.setdefault(res.group, []):
            out[res.group].append(res.version)
    return out


def api_versions(server_address: str) -> dict[str, object]:
    """The /api document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group_list() -> dict[str, object]:
    """The /apis document."""
    groups = []
    for group, versions in group_versions().items():
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, object] | None:
    """The /apis/<group> document, or None for an unknown group."""
    versions = group_versions().get(group)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def resource_list(group: str, version: str) -> dict[str, object] | None:
    """The APIResourceList of one group version, or None when nothing is served there."""
    entries: list[dict[str, object]] = []
    for res in RESOURCES:
        if res.group != group or res.version != version:
            continue
        entry: dict[str, object] = {
            "name": res.name,
            "singularName": res.singular_name,
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": VERBS,
        }
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        if res.categories:
            entry["categories"] = list(res.categories)
        entries.append(entry)
        for sub in res.subresources:
            verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
            if sub == "finalize":
                verbs = ["update"]
            kind = "Pod" if sub == "log" else res.kind
            entries.append(
                {
                    "name": f"{res.name}/{sub}",
                    "singularName": "",
                    "namespaced": res.namespaced,
                    "kind": kind,
                    "verbs": verbs,
                }
            )
    if not entries:
        return None
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}


def openapi_v3_index() -> dict[str, object]:
    """A stub /openapi/v3 index: one entry per served group version."""
    paths: dict[str, object] = {}
    for gv in _served_group_versions():
        prefix = "api/v1" if gv == "v1" else f"apis/{gv}"
        paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={_hash(gv)}"}
    return {"paths": paths}


def openapi_v3_document(prefix: str) -> dict[str, object] | None:
    """A stub OpenAPI v3 document for one group version.

    It has a PATCH operation per resource that advertises the ``fieldValidation`` query parameter,
    so kubectl and helm leave field validation to the server, and no schemas.
    """
    gv = "v1" if prefix == "api/v1" else prefix.removeprefix("apis/")
    if gv not in _served_group_versions():
        return None
    group, _, version = gv.rpartition("/")
    paths: dict[str, object] = {}
    params = [
        {"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
        for name in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
    ]
    for res in RESOURCES:
        if res.group != group or res.version != version:
            continue
        gvk = {"group": group, "version": version, "kind": res.kind}
        scope = "namespaces/{namespace}/" if res.namespaced else ""
        op = {
            "operationId": f"patch{res.kind}",
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
        }
        paths[f"/{prefix}/{scope}{res.name}/{{name}}"] = {"patch": op}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes API emulator", "version": "v1.35.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def _served_group_versions() -> list[str]:
    out: list[str] = []
    for res in RESOURCES:
        if res.api_version not in out:
            out.append(res.api_version)
    return out


def _hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:32].upper()
