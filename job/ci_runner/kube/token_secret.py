"""The token Secret the runner keeps for the build pod (``ci-runner-<RELEASE>-git``, key ``token``):
the one module that reads and writes it.

It holds GIT_TOKEN's value (when no GIT_TOKEN_SECRET is given) or a GitHub App's installation
token with its expiry as an annotation; build Jobs read it through a Secret reference. In a
cluster the chart (or the manifests) creates it empty and the runner may only read and update it
by name: a Role cannot limit ``create`` to one name, and a runner that may create Secrets may
create any. Only a run that may create it (a person's kubeconfig) creates it when missing. The
installation token is reused until RENEW_BEFORE its expiry (and renewed then, mid-run too:
``run/auth.py``): GitHub's ETags vary with the
Authorization header, so a fresh token each run would turn every no-op run's free 304 into a
full request.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from ..config import Settings
from ..errors import ConfigError, KubernetesError
from .client import MANAGED_BY, RELEASE_LABEL, SECRETS, Kube, Obj

TOKEN_KEY = "token"
EXPIRES = "ci-runner.io/token-expires-at"
"""Annotation on the token Secret: when the installation token in it expires (ISO 8601)."""
RENEW_BEFORE = timedelta(minutes=10)
"""An installation token this close to its expiry is renewed before it is used, kept or not.
Ten minutes: a build Job's pod may take minutes to start before its init container fetches the
build context with the token (an image pull, a node the autoscaler adds), and clocks drift;
GitHub's tokens live an hour, so a token is used for its first fifty minutes."""


def manifest(settings: Settings, token: str, expires: datetime | None = None) -> Obj:
    """The Secret holding ``token`` (with its expiry, for an installation token)."""
    metadata: Obj = {
        "name": settings.token_secret_name,
        "namespace": settings.cicd_namespace,
        "labels": {**MANAGED_BY, RELEASE_LABEL: settings.release},
    }
    if expires is not None:
        metadata["annotations"] = {EXPIRES: expires.astimezone(UTC).isoformat(timespec="seconds")}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "stringData": {TOKEN_KEY: token},
    }


def usable(expires: datetime | None, now: datetime) -> bool:
    """Whether a token expiring at ``expires`` (None: unknown) is good for over RENEW_BEFORE."""
    return expires is not None and expires - RENEW_BEFORE > now


def kept(secret: Obj | None) -> tuple[str | None, datetime | None]:
    """The installation token in the runner's Secret and its expiry; (None, None) when it
    holds none, or none the runner can read (edited by hand: renew rather than trust it)."""
    if secret is None:
        return None, None
    expires = (secret["metadata"].get("annotations") or {}).get(EXPIRES)
    encoded = (secret.get("data") or {}).get(TOKEN_KEY)
    if not expires or not encoded:
        return None, None
    try:
        when = datetime.fromisoformat(expires)
        token = base64.b64decode(encoded).decode()
    except ValueError:
        return None, None
    if when.tzinfo is None or not token:
        return None, None
    return token, when


def kept_token(secret: Obj | None, now: datetime) -> str | None:
    """The installation token in the runner's Secret, if it is good for over RENEW_BEFORE."""
    token, expires = kept(secret)
    return token if usable(expires, now) else None


def read(kube: Kube, settings: Settings) -> Obj | None:
    """The token Secret as it is now, or None."""
    assert settings.token_secret_name
    return kube.read(SECRETS, settings.cicd_namespace, settings.token_secret_name)


def write(
    kube: Kube,
    settings: Settings,
    token: str,
    current: Obj | None,
    expires: datetime | None = None,
) -> None:
    """Keep ``token`` in the Secret, over ``current`` (what was read: Conflict when someone
    wrote it since). The labels and annotations others put there (helm's or kubectl's, which
    made it) stay. A missing Secret that the runner may not create is ConfigError saying how
    to make it."""
    body = manifest(settings, token, expires)
    if current is None:
        try:
            kube.save(SECRETS, body)
        except KubernetesError as e:
            if e.status != 403:
                raise
            name, ns = settings.token_secret_name, settings.cicd_namespace
            raise ConfigError(
                [
                    f"the token Secret {name!r} in namespace {ns!r} does not exist, and the "
                    "runner may only update it: the chart and the manifests create it; else "
                    f"`kubectl create secret generic {name} -n {ns}`"
                ]
            ) from e
        return
    meta = body["metadata"]
    kept = current["metadata"]
    meta["resourceVersion"] = kept["resourceVersion"]
    # The maker's labels win (helm's managed-by stays Helm); the expiry annotation is ours.
    meta["labels"] = {**meta["labels"], **(kept.get("labels") or {})}
    annotations = {**(kept.get("annotations") or {}), **meta.get("annotations", {})}
    if expires is None:  # a plain token now: no expiry of an earlier installation token
        annotations.pop(EXPIRES, None)
    if annotations:
        meta["annotations"] = annotations
    kube.save(SECRETS, body)


def keep_git_token(kube: Kube, settings: Settings) -> None:
    """Create or refresh the copy of GIT_TOKEN build Jobs read (when no GIT_TOKEN_SECRET is
    given: then the user owns the Secret)."""
    if not settings.git_token or settings.git_token_secret:
        return
    write(kube, settings, settings.git_token, read(kube, settings))
