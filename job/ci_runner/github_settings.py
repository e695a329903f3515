"""The GitHub rows of the settings table: authenticating as a GitHub App, and what GitHub and
the operator are told (commit statuses, Deployments, NOTIFY_URL).

``GitHubSettings`` is a group of ``Settings`` (mixed into it), not a table of its own: the CLI,
the README and the chart see one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import parsing as p
from .parsing import setting

DEFAULT_GITHUB_API_URL = "https://api.github.com"


@dataclass(frozen=True, kw_only=True)
class GitHubSettings:
    """Where GitHub is, GitHub App credentials, and reporting."""

    github_api_url: str = setting(
        "GITHUB_API_URL",
        "GitHub API root (GitHub Enterprise: https://HOST/api/v3).",
        default=DEFAULT_GITHUB_API_URL,
        parse=p.url,
        metavar="URL",
    )
    github_app_id: str | None = setting(
        "GITHUB_APP_ID",
        "GitHub App ID (or client ID) to authenticate as, instead of GIT_TOKEN.",
        default=None,
        parse=p.app_id,
        metavar="ID",
    )
    github_app_installation_id: int | None = setting(
        "GITHUB_APP_INSTALLATION_ID",
        "The App's installation on the repository's owner.",
        default=None,
        parse=p.positive,
        metavar="ID",
    )
    github_app_private_key: str | None = setting(
        "GITHUB_APP_PRIVATE_KEY",
        "The App's private key, PEM text (from a Secret).",
        default=None,
        secret=True,
        metavar="PEM",
    )
    github_status: bool = setting(
        "GITHUB_STATUS",
        "Post a commit status when a build or deploy starts, succeeds or fails.",
        default=True,
        parse=p.boolean,
        metavar="BOOLEAN",
    )
    status_context: str = setting(
        "STATUS_CONTEXT",
        "Context of the commit statuses.",
        default="",
        shown="ci-runner/<RELEASE>",
    )
    github_deployments: bool = setting(
        "GITHUB_DEPLOYMENTS",
        "Record each deploy as a GitHub Deployment of the commit to ENVIRONMENT.",
        default=False,
        parse=p.boolean,
        metavar="BOOLEAN",
    )
    environment: str = setting(
        "ENVIRONMENT",
        "GitHub Deployments environment name.",
        default="",
        shown="<DEPLOY_NS>/<RELEASE>",
    )
    notify_url: str | None = setting(
        "NOTIFY_URL",
        "URL that gets a JSON POST (Slack-compatible 'text') when a commit is deployed, fails "
        "or is given up on.",
        default=None,
        parse=p.url,
        secret=True,
        metavar="URL",
    )

    @property
    def uses_app(self) -> bool:
        """Whether the runner authenticates as a GitHub App installation."""
        return self.github_app_id is not None


def credential_problems(values: dict[str, Any]) -> list[str]:
    """One kind of GitHub credentials, and a whole GitHub App when that is the kind."""
    app = {
        "GITHUB_APP_ID": values.get("github_app_id"),
        "GITHUB_APP_INSTALLATION_ID": values.get("github_app_installation_id"),
        "GITHUB_APP_PRIVATE_KEY": values.get("github_app_private_key"),
    }
    given = [name for name, value in app.items() if value is not None]
    if not given:
        return []
    problems = []
    if len(given) < len(app):
        missing = " and ".join(name for name in app if name not in given)
        problems.append(f"{', '.join(given)} given without {missing}: a GitHub App needs all three")
    for token in ("GIT_TOKEN", "GIT_TOKEN_SECRET"):
        if values.get(token.lower()):
            problems.append(
                f"{token} and GITHUB_APP_* are both set: authenticate with one kind of "
                "credentials (the App's installation token is kept for Kaniko by the runner)"
            )
    key = app["GITHUB_APP_PRIVATE_KEY"]
    if key is not None:
        from .appauth import key_problem  # cryptography is loaded only when a key is given

        problem = key_problem(key)
        if problem:
            problems.append(f"GITHUB_APP_PRIVATE_KEY {problem}")
    return problems
