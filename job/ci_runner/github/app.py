"""A GitHub App's JWT: what the runner signs with the App's private key and exchanges for an
installation token (``GitHub.installation_token``)."""

from __future__ import annotations

from datetime import datetime, timedelta

# GitHub's rules for an App's JWT: RS256; iat 60 s in the past against clock drift; exp no more
# than 10 minutes ahead ("Generating a JSON Web Token (JWT) for a GitHub App", docs.github.com).
JWT_BACKDATE = timedelta(seconds=60)
JWT_LIFETIME = timedelta(minutes=9)


def app_jwt(app_id: str, private_key: str, now: datetime) -> str:
    """The App's JWT at ``now``, signed RS256 with ``private_key``."""
    # Imported here, not at the top: PyJWT and cryptography cost an idle run's start-up time,
    # and only a GitHub App needs them.
    import jwt

    claims = {
        "iat": int((now - JWT_BACKDATE).timestamp()),
        "exp": int((now + JWT_LIFETIME).timestamp()),
        "iss": app_id,
    }
    return jwt.encode(claims, private_key, algorithm="RS256")
