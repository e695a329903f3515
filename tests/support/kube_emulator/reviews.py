"""The two endpoints that store nothing, served outside the resource table.

``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` (``kubectl auth can-i``, and
``ci-runner check``) is answered by ``authz.decide`` for a ServiceAccount, and allowed for the
admin. ``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`` (``kubectl create token``)
answers the emulator's token of that ServiceAccount, so a test does what it would do on a real
cluster. kubectl sends both as protobuf: their messages are added to the decoder's schema below.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from . import protobuf, resources
from .authz import Attributes, User, decide, forbidden, service_account_token, user_of
from .store import ApiError, Obj

if TYPE_CHECKING:
    from .server import Handler

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def _token_path(path: str) -> tuple[str, str] | None:
    """(namespace, name) of a TokenRequest path."""
    parts = path.strip("/").split("/")
    if len(parts) != 7 or parts[:3] != ["api", "v1", "namespaces"]:
        return None
    if (parts[4], parts[6]) != ("serviceaccounts", "token"):
        return None
    return parts[3], parts[5]


def is_review(method: str, path: str) -> bool:
    """Whether ``serve`` answers this request (a SelfSubjectAccessReview or a TokenRequest)."""
    return method == "POST" and (path == SSAR_PATH or _token_path(path) is not None)


def serve(handler: Handler) -> None:
    """Answer a SelfSubjectAccessReview or a TokenRequest (see ``is_review``)."""
    store = handler.emu.store
    if _token_path(handler.req_path) is None:
        asked = Attributes("create", group="authorization.k8s.io",
                           resource="selfsubjectaccessreviews")  # fmt: skip
    else:
        namespace, name = _token_path(handler.req_path) or ("", "")
        asked = Attributes("create", namespace, "", "serviceaccounts", "token", name)
    user = user_of(store, handler.headers, asked)
    account = _token_path(handler.req_path)
    if account is not None:
        _token(handler, user, *account)
        return
    review = handler._body_object()
    spec = review.get("spec") or {}
    resource = spec.get("resourceAttributes")
    if resource is not None:
        fields = ("verb", "namespace", "group", "resource", "subresource", "name")
        attributes = Attributes(**{f: str(resource.get(f) or "") for f in fields})
    else:
        other = spec.get("nonResourceAttributes") or {}
        attributes = Attributes(str(other.get("verb") or ""), path=str(other.get("path") or ""))
    if user is None:
        allowed, reason = True, "the emulator allows everything to this token"
    else:
        allowed, reason = decide(store, user, attributes)
    status: Obj = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    metadata = {"creationTimestamp": None}
    kind = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview"}
    answer = {**review, **kind, "metadata": metadata, "status": status}
    handler._send_json(201, answer)


def _token(handler: Handler, user: User | None, namespace: str, name: str) -> None:
    """``kubectl create token``: the ServiceAccount's emulator token (it never expires)."""
    attributes = Attributes("create", namespace, "", "serviceaccounts", "token", name)
    if user is not None and not decide(handler.emu.store, user, attributes)[0]:
        raise forbidden(user, attributes)
    accounts = resources.find("v1", "serviceaccounts")
    assert accounts is not None
    if handler.emu.store.get(accounts, namespace, name) is None:
        message = f'serviceaccounts "{name}" not found'
        raise ApiError(404, message, "NotFound", {"name": name, "kind": "serviceaccounts"})
    request = handler._body_object() if handler.body else {}
    spec = request.get("spec") or {}
    seconds = int(spec.get("expirationSeconds") or 3600)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    answer = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {"audiences": spec.get("audiences") or ["https://kubernetes.default.svc"],
                 "expirationSeconds": seconds, "boundObjectRef": spec.get("boundObjectRef")},
        "status": {"token": service_account_token(namespace, name),
                   "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }  # fmt: skip
    handler._send_json(201, answer)


# Field numbers of k8s.io/api authorization/v1 and authentication/v1 generated.proto: kubectl
# sends both reviews as protobuf. "z": omitempty scalars Go's JSON leaves out when empty.
_AZ, _AN = "k8s.io.api.authorization.v1", "k8s.io.api.authentication.v1"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
_REVIEW = [[1, "metadata", f"{_META}.ObjectMeta", "o"]]
protobuf.add_schema(
    {
        "authorization.k8s.io/v1/SelfSubjectAccessReview": f"{_AZ}.SelfSubjectAccessReview",
        "authentication.k8s.io/v1/TokenRequest": f"{_AN}.TokenRequest",
    },
    {
        f"{_AZ}.SelfSubjectAccessReview": [*_REVIEW, [2, "spec", f"{_AZ}.Spec", "o"],
                                           [3, "status", f"{_AZ}.Status", "o"]],
        f"{_AZ}.Spec": [[1, "resourceAttributes", f"{_AZ}.ResourceAttributes", "o"],
                        [2, "nonResourceAttributes", f"{_AZ}.NonResourceAttributes", "o"]],
        f"{_AZ}.ResourceAttributes": [
            [n, f, "string", "z"]
            for n, f in enumerate(("namespace", "verb", "group", "version", "resource",
                                   "subresource", "name"), start=1)
        ],
        f"{_AZ}.NonResourceAttributes": [[1, "path", "string", "z"], [2, "verb", "string", "z"]],
        f"{_AZ}.Status": [[1, "allowed", "bool", "o"], [2, "reason", "string", "z"],
                          [3, "evaluationError", "string", "z"], [4, "denied", "bool", "z"]],
        f"{_AN}.TokenRequest": [*_REVIEW, [2, "spec", f"{_AN}.TokenRequestSpec", "o"]],
        f"{_AN}.TokenRequestSpec": [[1, "audiences", "string", "r"],
                                    [3, "boundObjectRef", f"{_AN}.BoundObjectReference", "o"],
                                    [4, "expirationSeconds", "int64", "o"]],
        f"{_AN}.BoundObjectReference": [
            [n, f, "string", "z"] for n, f in enumerate(("kind", "apiVersion", "name", "uid"), 1)
        ],
    },
)  # fmt: skip
