"""Authenticating as a GitHub App installation, for one run: the installation token kept in the
runner's token Secret (``kube/token_secret.py``) while it is good, else a new one from GitHub
(``github/app.py`` signs the JWT), kept for the runs after.

The token is checked at the moment of each use, not once per run: GitHub's installation tokens
expire an hour after they are made ("The installation access token will expire after 1 hour",
docs.github.com, "Generating an installation access token for a GitHub App"; the answer's
``expires_at`` says when), and a run whose build takes most of that hour must still post its
statuses. ``InstallationToken`` is what the GitHub client asks before every request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from .. import logs
from ..config import Settings
from ..errors import Conflict
from ..github.app import app_jwt
from ..github.client import GitHub
from ..kube import token_secret
from ..kube.client import Kube, Obj

log = logging.getLogger(__name__)

Mint = Callable[[datetime], tuple[str, datetime]]
"""Makes a new installation token at a time: the token and its expiry."""
Keep = Callable[[str, datetime], None]
"""Keeps a new token (and its expiry) for the build Jobs and the runs after."""


def _now() -> datetime:
    return datetime.now(UTC)


class InstallationToken:
    """A credential source: the installation token, renewed when less than
    ``token_secret.RENEW_BEFORE`` is left at the moment it is asked for.

    Pure but for what it is given: ``mint`` (GitHub), ``keep`` (the token Secret) and ``now``
    (the clock), so its decisions are tested without a server. Every token it holds is learnt
    by ``logs``, so no log line or error message can show one."""

    def __init__(
        self,
        mint: Mint,
        keep: Keep | None,
        name: str = "",
        token: str | None = None,
        expires: datetime | None = None,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self._mint = mint
        self._keep = keep
        self._name = name
        self._token = token
        self._expires = expires
        self._now = now
        self._kept = token  # made by an earlier run: GitHub may have revoked it since
        logs.learn(token)  # a kept one too: a build log may echo it

    def __call__(self) -> str:
        """A token good for over RENEW_BEFORE from now (a fresh one when GitHub makes them
        shorter-lived than that: used as it is, not renewed in a loop)."""
        now = self._now()
        if self._token is None or not token_secret.usable(self._expires, now):
            self._renew(now)
        assert self._token is not None
        return self._token

    def refused(self, token: str) -> bool:
        """GitHub answered 401 to ``token``. A token kept by an earlier run may have been
        revoked before its ``expires_at``: it is dropped, and the next ask mints a new one
        (True). One this run made is not retried (False): the 401 is the App's trouble, and
        asking again would only loop."""
        if token != self._kept or token != self._token:
            return False
        log.warning("GitHub refused the kept installation token (revoked?): asking for a new one")
        self._kept = self._token = None
        return True

    def _renew(self, now: datetime) -> None:
        token, expires = self._mint(now)
        logs.learn(token)
        log.info(
            "new installation token%s, valid until %s",
            f" for {self._name}" if self._name else "",
            expires.isoformat(timespec="seconds"),
        )
        self._token, self._expires = token, expires
        if self._keep is not None:
            self._keep(token, expires)


def authenticate(
    kube: Kube, github: GitHub, settings: Settings, store: bool = True
) -> InstallationToken | None:
    """Authorise ``github`` as the App's installation (None: not an App): with the kept token
    while it is good, else with a new one, kept (unless not ``store``: a dry run writes
    nothing). The source returned is the one ``github`` asks; call it to have the Secret hold
    a good token (before a build Job clones with it)."""
    s = settings
    if not s.uses_app:
        return None
    assert s.github_app_id and s.github_app_private_key and s.github_app_installation_id
    app_id, key = s.github_app_id, s.github_app_private_key
    installation = s.github_app_installation_id

    def mint(now: datetime) -> tuple[str, datetime]:
        jwt = app_jwt(app_id, key, now)
        logs.learn(jwt)
        return github.installation_token(jwt, installation)

    current = token_secret.read(kube, s)
    read_at_start: list[Obj | None] = [current]  # the first write needs no second read

    def keep(token: str, expires: datetime) -> None:
        try:
            secret = read_at_start.pop() if read_at_start else token_secret.read(kube, s)
            token_secret.write(kube, s, token, secret, expires)
        except Conflict:
            # Another run kept its own token meanwhile; ours stays good for this run.
            log.info("another run renewed the installation token first")
        # Other failures end the step that asked (exit 3; a report's is one warning): a build
        # must not start with a token the Secret does not hold.

    token, expires = token_secret.kept(current)
    name = f"App {app_id} (installation {installation})"
    source = InstallationToken(mint, keep if store else None, name, token, expires)
    github.use_credentials(source)
    source()  # now, so that a refused key ends the run before anything else is asked
    return source
