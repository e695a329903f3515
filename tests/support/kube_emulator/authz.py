"""Who is asking, and may they: ServiceAccount tokens and RBAC, as the real API server decides.

A request whose bearer token is ``emulator-sa.<namespace>.<name>`` (``service_account_token``),
or that impersonates ``system:serviceaccount:<namespace>:<name>`` (client-go sends a kubeconfig's
token only over TLS, its impersonation always; ``write_kubeconfig`` writes both), comes from that
ServiceAccount. Every other request (the default kubeconfig) is the all-allowed admin, as before.
A request with a ServiceAccount's token that also impersonates someone is authorized as the real
API server authorizes impersonation (``impersonating``): ``impersonate`` on that ServiceAccount,
user or group.
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


def user_of(store: Any, headers: Any, request: Attributes | None = None) -> User | None:
    """The user a request acts as: the ServiceAccount its bearer token names, or the one it
    impersonates (when the token's ServiceAccount may: ``impersonating``); None for anyone else
    (the all-allowed admin). 401 for the token of a ServiceAccount that does not exist."""
    requester = _authenticated(store, headers)
    impersonated = headers.get("Impersonate-User")
    if not impersonated:
        if headers.get_all("Impersonate-Group") or headers.get("Impersonate-Uid"):
            # buildImpersonationRequests: groups, extras or a UID without a user
            raise ApiError(
                400, "requested impersonation without impersonating a user", "BadRequest"
            )
        return requester
    groups = headers.get_all("Impersonate-Group") or []
    return impersonating(store, requester, impersonated, groups, request)


def _authenticated(store: Any, headers: Any) -> User | None:
    """Who sent the request: the ServiceAccount of an emulator token, None for the admin."""
    scheme, _, token = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
        return None
    namespace, _, name = token.removeprefix(TOKEN_PREFIX).partition(".")
    accounts = resources.find("v1", "serviceaccounts")
    if not name or accounts is None or store.get(accounts, namespace, name) is None:
        raise ApiError(401, "Unauthorized", "Unauthorized")
    return service_account_user(namespace, name)


def impersonating(
    store: Any,
    requester: User | None,
    name: str,
    groups: list[str],
    request: Attributes | None = None,
) -> User:
    """The user of ``Impersonate-User`` (and ``Impersonate-Group``), as kube-apiserver's
    impersonation filter makes it and authorizes it (k8s.io/apiserver v0.37.2
    pkg/endpoints/filters/impersonation/impersonation.go ``WithImpersonation`` and
    ``buildImpersonationRequests``; mode.go ``authorizeUsername``/``authorizeGroups`` for the
    constrained filter of 1.36+, whose legacy mode decides the same):

    - each thing impersonated needs the verb ``impersonate``: a ServiceAccount's username
      (``system:serviceaccount:<ns>:<name>``) on ``serviceaccounts`` named ``<name>`` in
      ``<ns>``, any other username on ``users``, each group on ``groups`` (cluster-wide);
      the first refused is the 403, worded as responsewriters.Forbidden words it;
    - a ServiceAccount named without groups gets its groups (serviceaccount.MakeGroupNames:
      system:serviceaccounts, system:serviceaccounts:<ns>), and every user other than
      system:anonymous system:authenticated unless system:unauthenticated was named.

    The 403 is worded as the v1.35 the emulator reports (/version) words it. From 1.36
    constrained impersonation is on by default (features/kube_features.go
    ``ConstrainedImpersonation``) and its modes are tried before the legacy one, the first
    refusal being the one answered (constrained_impersonation.go ``getImpersonatedUser``): a
    ServiceAccount named alone is then refused as ``impersonate-on:serviceaccount:<verb>`` on
    the request itself, any other user as ``impersonate-on:user-info:<verb>``; what is
    allowed is the same. The constrained verbs (``impersonate:<mode>``) are not modelled.

    ``requester`` None is the admin (system:masters on a real cluster): allowed. Over plain
    HTTP client-go sends no credential (only its impersonation): such a request has no
    requester to check, so the emulator takes it as the admin's."""
    account = None
    wanted = [("serviceaccounts" if name.startswith(SA_USER_PREFIX) else "users", name)]
    if name.startswith(SA_USER_PREFIX):
        namespace, _, sa_name = name.removeprefix(SA_USER_PREFIX).partition(":")
        if sa_name and ":" not in sa_name:
            account = (namespace, sa_name)
        else:
            wanted = [("users", name)]
    wanted += [("groups", group) for group in groups]
    if requester is not None:
        for resource, what in wanted:
            if resource == "serviceaccounts" and account is not None:
                a = Attributes("impersonate", account[0], "", resource, name=account[1])
            else:
                a = Attributes("impersonate", "", "", resource, name=what)
            if not decide(store, requester, a)[0]:
                raise forbidden(requester, a)
    if account is not None and not groups:
        return service_account_user(*account)
    added = (
        ()
        if {"system:authenticated", "system:unauthenticated"} & set(groups)
        else ("system:authenticated",)
    )
    return User(name, (*groups, *added))


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
    user = user_of(handler.emu.store, handler.headers, attributes)
    if user is None:
        return
    allowed, _ = decide(handler.emu.store, user, attributes)
    if not allowed:
        raise forbidden(user, attributes)
