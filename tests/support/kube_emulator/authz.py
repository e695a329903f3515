"""Who is asking, and may they: ServiceAccount tokens and RBAC, as the real API server decides.

A request whose bearer token is ``emulator-sa.<namespace>.<name>`` (``service_account_token``),
or that impersonates ``system:serviceaccount:<namespace>:<name>`` (client-go sends a kubeconfig's
token only over TLS, its impersonation always; ``write_kubeconfig`` writes both), comes from that
ServiceAccount. Every other request (the default kubeconfig) is the all-allowed admin, as before.
A ServiceAccount's requests are authorized by the Roles, ClusterRoles, RoleBindings and
ClusterRoleBindings in the store, with the evaluation of the real RBAC authorizer (Kubernetes
``plugin/pkg/auth/authorizer/rbac/rbac.go`` RuleAllows, ``pkg/apis/rbac/v1/evaluation_helpers.go``
VerbMatches/APIGroupMatches/ResourceMatches/ResourceNameMatches/NonResourceURLMatches, and
``pkg/registry/rbac/validation/rule.go`` VisitRulesFor/appliesToUser): ClusterRoleBindings
first, then the RoleBindings of the request's namespace; a binding whose role is missing grants
nothing. Refused: 403 Forbidden worded as the API server words it; a token of a ServiceAccount
that does not exist: 401. ``reviews.py`` answers SelfSubjectAccessReviews with this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import resources
from .store import ApiError, Obj

if TYPE_CHECKING:
    from .server import Handler

TOKEN_PREFIX = "emulator-sa."
SA_USER_PREFIX = "system:serviceaccount:"
RBAC = "rbac.authorization.k8s.io/v1"

DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                  "/openapi/*", "/readyz", "/version", "/version/"]  # fmt: skip
# What every authenticated user may do on a real cluster: the bootstrap ClusterRoles
# system:basic-user, system:discovery and system:public-info-viewer, bound to the group
# system:authenticated (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go). They are
# implied here rather than stored, so that listing ClusterRoles shows only what tests create.
BOOTSTRAP: tuple[tuple[str, Obj], ...] = (
    (
        "system:basic-user",
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            "verbs": ["create"],
        },
    ),
    (
        "system:basic-user",
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["selfsubjectreviews"],
            "verbs": ["create"],
        },
    ),
    ("system:discovery", {"nonResourceURLs": DISCOVERY_URLS, "verbs": ["get"]}),
)


@dataclass(frozen=True)
class User:
    """Who a request comes from, when it is not the all-allowed admin."""

    name: str
    groups: tuple[str, ...]


def service_account_user(namespace: str, name: str) -> User:
    """A ServiceAccount's user, named as the API server names it (serviceaccount.MakeUsername),
    with the groups its token authenticator gives."""
    return User(
        f"{SA_USER_PREFIX}{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


@dataclass(frozen=True)
class Attributes:
    """What a request (or a SelfSubjectAccessReview) asks to do, as authorizer.Attributes."""

    verb: str
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    """For a non-resource request (``resource`` empty): the URL path."""


def service_account_token(namespace: str, name: str) -> str:
    """The bearer token the emulator takes for this ServiceAccount."""
    return f"{TOKEN_PREFIX}{namespace}.{name}"


def user_of(store: Any, headers: Any) -> User | None:
    """The user a request comes from: the ServiceAccount its bearer token names, or the one it
    impersonates; None for anyone else (the all-allowed admin). 401 for the token of a
    ServiceAccount that does not exist."""
    impersonated = headers.get("Impersonate-User")
    if impersonated:
        return _impersonated(impersonated, headers.get_all("Impersonate-Group") or [])
    scheme, _, token = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
        return None
    namespace, _, name = token.removeprefix(TOKEN_PREFIX).partition(".")
    accounts = resources.find("v1", "serviceaccounts")
    if not name or accounts is None or store.get(accounts, namespace, name) is None:
        raise ApiError(401, "Unauthorized", "Unauthorized")
    return service_account_user(namespace, name)


def _impersonated(name: str, groups: list[str]) -> User:
    """The user of ``Impersonate-User``: a ServiceAccount's without groups gets its groups, and
    everyone system:authenticated (k8s.io/apiserver endpoints/filters/impersonation.go). The
    emulator lets anyone impersonate."""
    namespace, _, account = name.removeprefix(SA_USER_PREFIX).partition(":")
    if name.startswith(SA_USER_PREFIX) and account and not groups:
        return service_account_user(namespace, account)
    return User(name, (*groups, "system:authenticated"))


def rule_allows(rule: Obj, a: Attributes) -> bool:
    """RuleAllows: one PolicyRule against one request."""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    if not a.resource:
        return any(
            url == "*" or url == a.path or (url.endswith("*") and a.path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and a.group not in groups:
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    # Only "*", the exact resource[/subresource], or "*/<subresource>" match; "pods/*" does not.
    if not any(
        r in ("*", combined) or (a.subresource and r == f"*/{a.subresource}")
        for r in rule.get("resources") or []
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _applies(user: User, subjects: list[Obj], binding_namespace: str) -> Obj | None:
    """appliesTo: the first subject of a binding that is this user."""
    for subject in subjects:
        kind = subject.get("kind")
        if kind == "User" and subject.get("name") == user.name:
            return subject
        if kind == "Group" and subject.get("name") in user.groups:
            return subject
        if kind == "ServiceAccount":
            # A ServiceAccount subject without a namespace means the RoleBinding's own.
            namespace = subject.get("namespace") or binding_namespace
            if namespace and user.name == f"{SA_USER_PREFIX}{namespace}:{subject.get('name')}":
                return subject
    return None


def _bindings(store: Any, user: User, namespace: str) -> list[tuple[str, list[Obj]]]:
    """(source, rules) of every binding that applies to ``user``, in VisitRulesFor's order."""
    found: list[tuple[str, list[Obj]]] = [
        (f'ClusterRoleBinding "{name}" of ClusterRole "{name}" to Group "system:authenticated"',
         [rule]) for name, rule in BOOTSTRAP
    ]  # fmt: skip
    kinds = [("ClusterRoleBinding", "")] + ([("RoleBinding", namespace)] if namespace else [])
    for kind, where in kinds:
        res = resources.find(RBAC, kind)
        assert res is not None
        for binding in store.list(res, where or None)[0]:
            subject = _applies(user, binding.get("subjects") or [], where)
            ref = binding.get("roleRef") or {}
            if subject is None or ref.get("kind") not in ("Role", "ClusterRole"):
                continue
            role_res = resources.find(RBAC, ref["kind"])
            assert role_res is not None
            role_ns = where if ref["kind"] == "Role" else ""
            role = store.get(role_res, role_ns, ref.get("name", ""))
            if role is None:  # a dangling roleRef grants nothing
                continue
            name = binding["metadata"]["name"] + (f"/{where}" if where else "")
            source = f'{kind} "{name}" of {ref["kind"]} "{ref["name"]}" to {subject["kind"]}'
            found.append((f'{source} "{subject.get("name")}"', role.get("rules") or []))
    return found


def decide(store: Any, user: User, a: Attributes) -> tuple[bool, str]:
    """Whether RBAC allows ``a`` to ``user``, and the reason the real authorizer would give."""
    for source, rules in _bindings(store, user, a.namespace):
        if any(rule_allows(rule, a) for rule in rules):
            return True, f"RBAC: allowed by {source}"
    return False, ""


def forbidden(user: User, a: Attributes) -> ApiError:
    """The 403 the API server answers, worded as kubectl shows it."""
    if not a.resource:
        message = f'forbidden: User "{user.name}" cannot {a.verb} path "{a.path}"'
        return ApiError(403, message, "Forbidden")
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    what = a.resource + (f".{a.group}" if a.group else "") + (f' "{a.name}"' if a.name else "")
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    message = (
        f'{what} is forbidden: User "{user.name}" cannot {a.verb} resource "{combined}" '
        f'in API group "{a.group}" {scope}'
    )
    details = {"group": a.group, "kind": a.resource} | ({"name": a.name} if a.name else {})
    return ApiError(403, message, "Forbidden", details)


def authorize(handler: Handler) -> None:
    """Refuse (403) what RBAC does not allow a ServiceAccount; anyone else may do anything."""
    user = user_of(handler.emu.store, handler.headers)
    if user is None:
        return
    route = handler.route
    if route.resource is None:
        attributes = Attributes(handler.verb, path=handler.req_path)
    else:
        # The API server takes a namespace's own name as the namespace of a request for it
        # (k8s.io/apiserver endpoints/request/requestinfo.go): a RoleBinding there applies.
        namespace = route.namespace or ""
        if route.resource.name == "namespaces" and route.name:
            namespace = route.name
        attributes = Attributes(
            handler.verb, namespace, route.group, route.resource.name,
            route.subresource or "", route.name or "",
        )  # fmt: skip
    allowed, _ = decide(handler.emu.store, user, attributes)
    if not allowed:
        raise forbidden(user, attributes)
