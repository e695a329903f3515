"""GitHub Apps: registered public keys, the JWT check of ``POST /app/installations/{id}/
access_tokens``, and the installation tokens it hands out (which expire).

GitHub's rules for the JWT ("Generating a JSON Web Token (JWT) for a GitHub App",
docs.github.com): RS256; ``iss`` the App's ID or client ID; ``iat`` not in the future; ``exp``
in the future and no more than 10 minutes ahead. The 401 messages are the ones GitHub sends, as
users quote them (octokit/auth-app.js#698, sigmavirus24/github3.py#1050); for an unknown
``iss`` GitHub's exact text is not documented, so the fake says it cannot decode the JWT.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt

from .server import Incoming, Reply

DOCS = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
ACCESS_TOKENS = re.compile(r"/app/installations/([0-9]+)/access_tokens")
MAX_JWT_LIFETIME = 600
TOKEN_LIFETIME = 3600
"""Seconds an installation token lives (GitHub's are an hour)."""
UNDECODABLE = "A JSON web token could not be decoded"
EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at "
    "which the assertion expires"
)
TOO_LATE = "'Expiration time' claim ('exp') is too far in the future"
IAT = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"  # noqa: E501


@dataclass
class App:
    """A registered App: its IDs, the public half of its key, its installations."""

    app_id: str
    client_id: str
    public_pem: str
    installations: set[int]


@dataclass
class Issued:
    """An installation token handed out."""

    token: str
    installation: int
    expires: float


@dataclass
class Apps:
    """Registered Apps and the installation tokens issued to them."""

    now: Callable[[], float] = time.time
    token_lifetime: int = TOKEN_LIFETIME
    apps: list[App] = field(default_factory=list)
    issued: dict[str, Issued] = field(default_factory=dict)

    def expired(self, token: str | None) -> bool:
        """Whether ``token`` is an installation token past its expiry."""
        issued = self.issued.get(token or "")
        return issued is not None and issued.expires <= self.now()

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` is an installation token still alive."""
        return token in self.issued and not self.expired(token)

    def exchange(self, request: Incoming, installation: int) -> Reply:
        """Answer POST /app/installations/{installation}/access_tokens."""
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "A JSON web token could not be decoded")
        app, problem = self._check(token.strip())
        if app is None:
            return _error(401, problem)
        if installation not in app.installations:
            return _error(404, "Not Found")
        expires = int(self.now()) + self.token_lifetime
        issued = Issued("ghs_" + secrets.token_urlsafe(27), installation, expires)
        self.issued[issued.token] = issued
        body = {
            "token": issued.token,
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
            "permissions": {"contents": "read", "statuses": "write", "deployments": "write"},
            "repository_selection": "all",
        }
        return Reply(201, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _check(self, token: str) -> tuple[App | None, str]:
        """The App whose key signed ``token`` if its claims pass GitHub's rules; else why not."""
        # PyJWS, not PyJWT: GitHub takes a numeric iss, which PyJWT's claim checks refuse.
        jws = jwt.PyJWS()
        try:
            unverified = jws.decode_complete(token, options={"verify_signature": False})
            claims = json.loads(unverified["payload"])
        except (jwt.PyJWTError, ValueError):
            return None, UNDECODABLE
        if unverified["header"].get("alg") != "RS256" or not isinstance(claims, dict):
            return None, UNDECODABLE
        iss = str(claims.get("iss"))
        app = next((a for a in self.apps if iss in (a.app_id, a.client_id)), None)
        if app is None:
            return None, UNDECODABLE
        try:
            jws.decode(token, app.public_pem, algorithms=["RS256"])
        except jwt.PyJWTError:
            return None, UNDECODABLE
        now, exp, iat = self.now(), claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or exp <= now:
            return None, EXPIRED
        if exp > now + MAX_JWT_LIFETIME:
            return None, TOO_LATE
        if not isinstance(iat, int) or iat > now:
            return None, IAT
        return app, ""


def _error(status: int, message: str) -> Reply:
    body = {"message": message, "documentation_url": DOCS, "status": str(status)}
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})
