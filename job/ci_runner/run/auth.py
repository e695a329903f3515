"""Authenticating as a GitHub App installation, for one run: the installation token kept in the
runner's token Secret (``kube/token_secret.py``) while it is good, else a new one from GitHub
(``github/app.py`` signs the JWT), kept for the runs after.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from .. import logs
from ..config import Settings
from ..errors import Conflict
from ..github.app import app_jwt
from ..github.client import GitHub
from ..kube import token_secret
from ..kube.client import Kube

log = logging.getLogger(__name__)


def authenticate(kube: Kube, github: GitHub, settings: Settings, store: bool = True) -> None:
    """Authorise ``github`` as the App's installation: with the kept token while it is good,
    else with a new one, kept (unless not ``store``: a dry run writes nothing)."""
    s = settings
    if not s.uses_app:
        return
    assert s.github_app_id and s.github_app_private_key and s.github_app_installation_id
    now = datetime.now(UTC)
    current = token_secret.read(kube, s)
    token = token_secret.kept_token(current, now)
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
            try:
                token_secret.write(kube, s, token, current, expires)
            except Conflict:
                # Another run kept its own token meanwhile; ours stays good for this run.
                log.info("another run renewed the installation token first")
    logs.learn(token)  # a kept one too: a build log may echo it
    github.authorize(token)
