"""GitHub App authentication: the App's JWT, and the installation token kept between runs.

The runner signs a short-lived JWT with the App's private key and exchanges it for an
installation token, which then authorises every API call and Kaniko's clone. The token is kept
in the runner's token Secret (``ci-runner-<RELEASE>-git``, the one build Jobs read) with its
expiry, and reused until five minutes before it expires: GitHub's ETags vary with the
Authorization header, so a fresh token each run would turn every no-op run's free 304 into a
full request.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta

from . import logs
from .errors import Conflict
from .github import GitHub
from .kube import SECRETS, Kube, Obj
from .settings import Settings

log = logging.getLogger(__name__)

# The Secret build Jobs read the token from (build.py's token_secret, key TOKEN_KEY); build.py
# itself is not imported: an idle run does not load it.
TOKEN_KEY = "token"
EXPIRES = "ci-runner.io/token-expires-at"
"""Annotation on the token Secret: when the installation token in it expires (ISO 8601)."""
RENEW_BEFORE = timedelta(minutes=5)
"""A kept token this close to its expiry is renewed (a build must still clone with it)."""
# GitHub's rules for an App's JWT: RS256; iat 60 s in the past against clock drift; exp no more
# than 10 minutes ahead ("Generating a JSON Web Token (JWT) for a GitHub App", docs.github.com).
JWT_BACKDATE = timedelta(seconds=60)
JWT_LIFETIME = timedelta(minutes=9)


def key_problem(pem: str) -> str | None:
    """What is wrong with ``pem`` as an App's private key (a PEM RSA key), or None."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        # The library's message can quote the key's bytes: say only what is wrong.
        return "is not a PEM private key without a passphrase (the App's .pem file, as it is)"
    if not isinstance(key, rsa.RSAPrivateKey):
        return "is not an RSA key (GitHub Apps sign with RS256)"
    return None


def app_jwt(app_id: str, private_key: str, now: datetime) -> str:
    """The App's JWT at ``now``, signed RS256 with ``private_key``."""
    import jwt  # PyJWT, with cryptography for RS256

    claims = {
        "iat": int((now - JWT_BACKDATE).timestamp()),
        "exp": int((now + JWT_LIFETIME).timestamp()),
        "iss": app_id,
    }
    return jwt.encode(claims, private_key, algorithm="RS256")


def kept_token(secret: Obj | None, now: datetime) -> str | None:
    """The installation token in the runner's Secret, if it is good for over RENEW_BEFORE."""
    if secret is None:
        return None
    expires = (secret["metadata"].get("annotations") or {}).get(EXPIRES)
    encoded = (secret.get("data") or {}).get(TOKEN_KEY)
    if not expires or not encoded:
        return None
    try:
        usable = datetime.fromisoformat(expires) - RENEW_BEFORE > now
        token = base64.b64decode(encoded).decode()
    except ValueError:  # edited by hand: renew rather than trust it
        return None
    return token if usable and token else None


def token_secret(settings: Settings, token: str, expires: datetime) -> Obj:
    """The runner's token Secret holding an installation token and its expiry."""
    from .build import token_secret as kept_secret  # the same Secret GIT_TOKEN is kept in

    return kept_secret(
        settings, token, {EXPIRES: expires.astimezone(UTC).isoformat(timespec="seconds")}
    )


def authenticate(kube: Kube, github: GitHub, settings: Settings, store: bool = True) -> None:
    """Authorise ``github`` as the App's installation: with the kept token while it is good,
    else with a new one, kept (unless not ``store``: a dry run writes nothing)."""
    s = settings
    if not s.uses_app:
        return
    assert s.github_app_id and s.github_app_private_key and s.github_app_installation_id
    assert s.token_secret_name
    now = datetime.now(UTC)
    current = kube.read(SECRETS, s.cicd_namespace, s.token_secret_name)
    token = kept_token(current, now)
    if token is None:
        jwt = app_jwt(s.github_app_id, s.github_app_private_key, now)
        logs.learn(jwt)
        token, expires = github.installation_token(jwt, s.github_app_installation_id)
        logs.learn(token)
        log.info(
            "new installation token for App %s (installation %s), valid until %s",
            s.github_app_id,
            s.github_app_installation_id,
            expires.isoformat(timespec="seconds"),
        )
        if store:
            body = token_secret(s, token, expires)
            if current is not None:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                kube.save(SECRETS, body)
            except Conflict:
                # Another run kept its own token meanwhile; ours stays good for this run.
                log.info("another run renewed the installation token first")
    logs.learn(token)  # a kept one too: a build log may echo it
    github.authorize(token)
