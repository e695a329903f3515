"""The runner's settings: one declarative table, parsed and validated once from raw strings.

Each field of the frozen dataclasses below *is* a row of the table: its environment variable,
its option, the parser that validates it, its default and its help text. The click options of
every command, the validation that names every problem at once, the README's configuration
table (checked by a test) and the chart's environment all follow from these rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import Field, dataclass, fields
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import parsing as p
from .build_settings import DEFAULT_KANIKO_IMAGE, BuildSettings, build_problems
from .errors import ConfigError
from .github_settings import GitHubSettings, credential_problems
from .parsing import Spec, setting

__all__ = ["DEFAULT_KANIKO_IMAGE", "Settings", "StateSettings", "load", "secrets", "table"]


# Settings of the earlier loop-based runner that the CronJob design replaced.
OBSOLETE = {
    "INTERVAL": "the CronJob's schedule decides when a run happens",
    "STATE_PATH": "state lives in the ConfigMap named by STATE_CONFIGMAP",
}

# What an image tag may not contain.
_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, kw_only=True)
class StateSettings:
    """Where a release's state is and how to reach the Kubernetes API: all ``status`` needs."""

    release: str = setting("RELEASE", "Helm release name.", parse=p.release, metavar="NAME")
    cicd_namespace: str = setting(
        "CICD_NS",
        "Namespace of the state ConfigMap, the Lease, the build Jobs and their Secrets.",
        default="cicd",
        parse=p.namespace,
        option="--cicd-namespace",
        metavar="NAMESPACE",
    )
    state_configmap: str = setting(
        "STATE_CONFIGMAP",
        "Name of the state ConfigMap (and of the Lease).",
        default="",
        parse=p.configmap_name,
        shown="ci-runner-<RELEASE>",
        metavar="NAME",
    )
    api_timeout: int = setting(
        "API_TIMEOUT",
        "Seconds any single GitHub or Kubernetes API request may take.",
        default=30,
        parse=p.positive,
        metavar="SECONDS",
    )
    verify_ssl: bool = setting(
        "VERIFY_SSL",
        "Check the TLS certificates of the Kubernetes API and GitHub.",
        default=True,
        parse=p.boolean,
        metavar="BOOLEAN",
    )
    log_format: str = setting(
        "LOG_FORMAT",
        "text, or json (one object per line).",
        default="text",
        parse=p.log_format,
        metavar="[text|json]",
    )


@dataclass(frozen=True, kw_only=True)
class Settings(GitHubSettings, BuildSettings, StateSettings):
    """Everything one run needs to know, validated (the build's rows are in BuildSettings)."""

    repo: str = setting(
        "REPO",
        "GitHub repository, owner/name.",
        parse=p.repo,
        metavar="OWNER/NAME",
    )
    branch: str = setting("BRANCH", "Branch to follow.", default="main", parse=p.branch)
    image: str = setting(
        "IMAGE",
        "Image repository without tag, e.g. registry.example.com/team/app.",
        parse=p.image,
        metavar="REPOSITORY",
    )
    chart_path: str = setting(
        "CHART_PATH",
        "Path of the Helm chart in the repository.",
        parse=p.chart_path,
        metavar="PATH",
    )
    deploy_namespace: str = setting(
        "DEPLOY_NS",
        "Namespace of the release.",
        default="default",
        parse=p.namespace,
        option="--deploy-namespace",
        metavar="NAMESPACE",
    )
    max_attempts: int = setting(
        "MAX_RETRIES",
        "Attempts per commit before the runner gives up on it.",
        default=3,
        parse=p.positive,
        metavar="INTEGER",
    )
    git_token: str | None = setting(
        "GIT_TOKEN",
        "GitHub token for the API, the tarball and Kaniko's clone (prefer the variable).",
        default=None,
        secret=True,
    )
    git_token_secret: str | None = setting(
        "GIT_TOKEN_SECRET",
        "Existing Secret in CICD_NS (key 'token') for build Jobs; without it the runner keeps "
        "ci-runner-<RELEASE>-git from GIT_TOKEN.",
        default=None,
        parse=p.secret_name,
        metavar="NAME",
    )
    registry_secret: str | None = setting(
        "REGISTRY_SECRET",
        "kubernetes.io/dockerconfigjson Secret in CICD_NS mounted for Kaniko's push.",
        default=None,
        parse=p.secret_name,
        metavar="NAME",
    )
    helm_timeout: int = setting(
        "HELM_TIMEOUT",
        "Seconds helm may wait for the release to be ready before rolling back.",
        default=300,
        parse=p.positive,
        metavar="SECONDS",
    )
    image_repository_key: str = setting(
        "IMAGE_REPOSITORY_KEY",
        "Values key (dotted) that receives IMAGE.",
        default="image.repository",
        parse=p.values_key,
        metavar="KEY",
    )
    image_tag_key: str = setting(
        "IMAGE_TAG_KEY",
        "Values key (dotted) that receives the image tag: the commit SHA, with @<digest> when "
        "deploying by digest without IMAGE_DIGEST_KEY.",
        default="image.tag",
        parse=p.values_key,
        metavar="KEY",
    )
    image_digest_key: str | None = setting(
        "IMAGE_DIGEST_KEY",
        "Values key (dotted) that receives the pushed digest; the tag then stays the SHA.",
        default=None,
        parse=p.values_key,
        metavar="KEY",
    )
    deploy_by_digest: bool = setting(
        "DEPLOY_BY_DIGEST",
        "Deploy the digest Kaniko pushed, not the mutable tag.",
        default=True,
        parse=p.boolean,
        metavar="BOOLEAN",
    )
    values_files: tuple[str, ...] = setting(
        "VALUES_FILES",
        "Comma-separated values files inside the chart, applied in order before the image values.",
        default=(),
        parse=p.values_files,
        metavar="FILES",
    )
    create_namespace: bool = setting(
        "CREATE_NAMESPACE",
        "Pass helm --create-namespace (needs get/create on namespaces); false: DEPLOY_NS must "
        "exist.",
        default=True,
        parse=p.boolean,
        metavar="BOOLEAN",
    )

    @property
    def secret_values(self) -> list[str]:
        """The values of the secret settings given, to mask wherever outside text is kept."""
        return [str(getattr(self, f.name)) for f, spec in table(Settings)
                if spec.secret and getattr(self, f.name)]  # fmt: skip

    @property
    def github_host(self) -> str:
        """The git host Kaniko clones from (github.com for the public API)."""
        netloc = urlsplit(self.github_api_url).netloc
        return "github.com" if netloc == "api.github.com" else netloc

    @property
    def token_secret_name(self) -> str | None:
        """The Secret that carries the token to Kaniko, if the build needs one."""
        if self.git_token_secret:
            return self.git_token_secret
        kept = self.git_token or self.uses_app
        return f"ci-runner-{self.release}-git" if kept else None

    @property
    def has_credentials(self) -> bool:
        """Whether GitHub requests are authorised (statuses and deployments need it)."""
        return bool(self.git_token) or self.uses_app

    @property
    def latest_tag(self) -> str:
        """The moving tag: the branch with '/' (and anything else a tag refuses) made '-',
        then ``-latest``; at most 128 characters, as registries require."""
        return _NOT_IN_TAG.sub("-", self.branch)[: 128 - len("-latest")] + "-latest"


# -- loading --------------------------------------------------------------------------------------

S = TypeVar("S", bound=StateSettings)


def table(kind: type[StateSettings] = Settings) -> list[tuple[Field[Any], Spec]]:
    """The settings of ``kind`` in order, each with its Spec."""
    return [(f, f.metadata["setting"]) for f in fields(kind)]


def _derived(values: dict[str, Any]) -> list[str]:
    """Defaults that follow from other settings, and checks that span settings."""
    if not values.get("state_configmap") and values.get("release"):
        values["state_configmap"] = f"ci-runner-{values['release']}"
    if not values.get("status_context") and values.get("release"):
        values["status_context"] = f"ci-runner/{values['release']}"
    if not values.get("environment") and values.get("release"):
        values["environment"] = f"{values.get('deploy_namespace', 'default')}/{values['release']}"
    problems = build_problems(values) + credential_problems(values)
    keys = {
        "IMAGE_REPOSITORY_KEY": values.get("image_repository_key", "image.repository"),
        "IMAGE_TAG_KEY": values.get("image_tag_key", "image.tag"),
        "IMAGE_DIGEST_KEY": values.get("image_digest_key"),
    }
    named = [name for name, key in keys.items() if key is not None]
    for i, first in enumerate(named):
        problems += [
            f"{first} and {n} must differ" for n in named[i + 1 :] if keys[first] == keys[n]
        ]
    if keys["IMAGE_DIGEST_KEY"] and values.get("deploy_by_digest") is False:
        problems.append(
            "IMAGE_DIGEST_KEY needs DEPLOY_BY_DIGEST on: without it no digest is deployed"
        )
    return problems


def load(kind: type[S], options: Mapping[str, Any], environ: Mapping[str, str]) -> S:
    """Build ``kind`` from command-line ``options`` (by field name; None: not given), falling
    back to ``environ``; raise ConfigError naming every problem at once."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f, spec in table(kind):
        given = options.get(f.name)
        if isinstance(given, bool):  # a --flag/--no-flag
            values[f.name] = given
            continue
        raw = given if given is not None else environ.get(spec.env)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            if spec.required:
                problems.append(f"{spec.env} is required ({spec.help.rstrip('.')})")
            continue
        try:
            values[f.name] = spec.parse(text)
        except ValueError as e:
            shown = "***" if spec.secret else repr(text)
            problems.append(f"{spec.env} {e}, got {shown}")
    problems += _derived(values)
    if problems:
        raise ConfigError(problems)
    names = {f.name for f in fields(kind)}  # _derived may add what only Settings has
    return kind(**{name: value for name, value in values.items() if name in names})


def secrets(options: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """The raw values of secret settings, so logs and messages can mask them even when the
    settings themselves did not validate."""
    found = []
    for f, spec in table(Settings):
        if spec.secret:
            value = options.get(f.name) or environ.get(spec.env)
            if isinstance(value, str) and value.strip():
                found.append(value.strip())
    return found
