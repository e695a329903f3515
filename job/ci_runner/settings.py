"""The runner's settings: one frozen dataclass, parsed and validated once from raw strings.

Every problem is collected before failing, so a user fixing a CronJob sees all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigError

# ghcr.io/osscontainertools/kaniko is the maintained fork of the archived GoogleContainerTools
# project; pinned so a build does not change under a user without a release of ours.
DEFAULT_KANIKO_IMAGE = "ghcr.io/osscontainertools/kaniko:v1.28.3"
DEFAULT_GITHUB_API_URL = "https://api.github.com"

# Settings of the earlier loop-based runner that the CronJob design replaced.
OBSOLETE = {
    "INTERVAL": "the CronJob's schedule decides when a run happens",
    "STATE_PATH": "state lives in the ConfigMap named by STATE_CONFIGMAP",
}

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# A DNS-1123 label: namespaces, and helm release names (which helm caps at 53 characters).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# A DNS-1123 subdomain: ConfigMap and Secret names.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# An image repository without tag or digest: registry/path, lowercase path components.
_IMAGE = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")
# git check-ref-format, roughly: no spaces, control characters, '..', '~^:?*[\' or leading '-';
# and no '#', which separates the ref from the commit in Kaniko's git context.
_BRANCH_BAD = re.compile(r"[\x00-\x20~^:?*\[\\#]|\.\.|@\{|^-|^/|/$|\.lock$|//")
# What an image tag may not contain.
_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Settings:
    """Everything one run needs to know, validated."""

    repo: str
    """GitHub repository, ``owner/name``."""
    branch: str
    """Branch whose head is built and deployed."""
    image: str
    """Image repository (no tag) that Kaniko pushes to."""
    chart_path: str
    """Path of the Helm chart inside the repository."""
    release: str
    """Helm release name."""
    cicd_namespace: str
    """Namespace of the state ConfigMap, the Lease, the build Jobs and their Secrets."""
    deploy_namespace: str
    """Namespace the release is installed into."""
    max_retries: int
    """Attempts per commit before the runner gives up on it."""
    git_token: str | None
    """GitHub token for the API, the tarball and Kaniko's clone; never logged."""
    git_token_secret: str | None
    """Existing Secret in the CICD namespace whose key ``token`` build Jobs use."""
    registry_secret: str | None
    """dockerconfigjson Secret in the CICD namespace mounted for Kaniko's push."""
    verify_ssl: bool
    """TLS certificate checks for Kubernetes and GitHub."""
    github_api_url: str
    """GitHub API root (GitHub Enterprise: ``https://HOST/api/v3``)."""
    kaniko_image: str
    """Kaniko executor image of the build Job."""
    build_timeout: int
    """Seconds a build may take (the Job's activeDeadlineSeconds)."""
    helm_timeout: int
    """Seconds helm may wait for the release to become ready before rolling back."""
    api_timeout: int
    """Seconds any single GitHub or Kubernetes API request may take."""
    state_configmap: str
    """Name of the state ConfigMap (and of the Lease)."""
    log_format: str
    """``text`` or ``json``."""
    dockerfile: str
    """Dockerfile path, relative to the build context."""
    build_context: str
    """Directory in the repository that is the build context."""
    image_repository_key: str
    """Values key (dotted) that receives the image repository."""
    image_tag_key: str
    """Values key (dotted) that receives the image tag (the commit SHA)."""
    values_files: tuple[str, ...]
    """Values files inside the chart directory, applied in order before the image values."""
    create_namespace: bool
    """Pass ``--create-namespace`` (needs get/create on namespaces, cluster-wide)."""

    @property
    def github_host(self) -> str:
        """The git host Kaniko clones from (github.com for the public API)."""
        parts = urlsplit(self.github_api_url)
        if parts.netloc == "api.github.com":
            return "github.com"
        return parts.netloc

    @property
    def token_secret_name(self) -> str | None:
        """The Secret that carries the token to Kaniko, if the build needs one."""
        if self.git_token_secret:
            return self.git_token_secret
        return f"ci-runner-{self.release}-git" if self.git_token else None

    @property
    def latest_tag(self) -> str:
        """The moving tag: the branch with '/' (and anything else a tag refuses) made '-',
        then ``-latest``; at most 128 characters, as registries require."""
        return _NOT_IN_TAG.sub("-", self.branch)[: 128 - len("-latest")] + "-latest"


def _bool(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    return None


def _relative_path(text: str) -> bool:
    parts = text.split("/")
    return bool(text) and not text.startswith("/") and ".." not in parts


RUN_REQUIRES = ("REPO", "IMAGE", "CHART_PATH", "RELEASE")
"""What ``run`` needs; ``status`` only needs to find the state (RELEASE)."""


def load(raw: Mapping[str, str | None], require: tuple[str, ...] = RUN_REQUIRES) -> Settings:
    """Parse and validate raw option/environment strings; raise ConfigError naming every problem.

    ``raw`` is keyed by environment variable name (REPO, BRANCH, ...); None or "" means unset.
    A setting not in ``require`` may be left unset (it is then the empty string).
    """
    problems: list[str] = []

    def text(name: str, default: str | None = None) -> str | None:
        value = raw.get(name)
        value = value.strip() if value is not None else None
        return value if value else default

    def required(name: str, what: str) -> str:
        value = text(name)
        if value is None:
            if name in require:
                problems.append(f"{name} is required ({what})")
            return ""
        return value

    def integer(name: str, default: int, minimum: int) -> int:
        value = text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            problems.append(f"{name} must be a whole number, got {value!r}")
            return default
        if number < minimum:
            problems.append(f"{name} must be at least {minimum}, got {number}")
        return number

    repo = required("REPO", "owner/name")
    if repo and not _REPO.match(repo):
        problems.append(f"REPO must look like owner/name, got {repo!r}")
    branch = text("BRANCH", "main") or "main"
    if _BRANCH_BAD.search(branch):
        problems.append(f"BRANCH is not a valid git branch name: {branch!r}")
    image = required("IMAGE", "image repository without tag, e.g. registry.example.com/team/app")
    if image and not _IMAGE.match(image):
        problems.append(f"IMAGE must be a registry/repository without tag or digest, got {image!r}")
    chart_path = required("CHART_PATH", "path of the chart in the repository").strip("/")
    if raw.get("CHART_PATH") and not _relative_path(chart_path):
        problems.append(f"CHART_PATH must be a relative path in the repository, got {chart_path!r}")
    release = required("RELEASE", "helm release name")
    if release and (len(release) > 53 or not _DNS_LABEL.match(release)):
        problems.append(
            f"RELEASE must be a lowercase DNS label of at most 53 characters, got {release!r}"
        )
    namespaces = {}
    for name, default in (("CICD_NS", "cicd"), ("DEPLOY_NS", "default")):
        value = text(name, default) or default
        if len(value) > 63 or not _DNS_LABEL.match(value):
            problems.append(f"{name} must be a lowercase DNS label, got {value!r}")
        namespaces[name] = value
    max_retries = integer("MAX_RETRIES", 3, 1)
    build_timeout = integer("BUILD_TIMEOUT", 1800, 1)
    helm_timeout = integer("HELM_TIMEOUT", 300, 1)
    api_timeout = integer("API_TIMEOUT", 30, 1)

    def flag(name: str) -> bool:
        value = text(name, "true") or "true"
        parsed = _bool(value)
        if parsed is None:
            problems.append(f"{name} must be true or false, got {value!r}")
            return True
        return parsed

    verify_ssl = flag("VERIFY_SSL")
    create_namespace = flag("CREATE_NAMESPACE")

    github_api_url = (text("GITHUB_API_URL", DEFAULT_GITHUB_API_URL) or "").rstrip("/")
    url = urlsplit(github_api_url)
    if url.scheme not in {"http", "https"} or not url.netloc:
        problems.append(f"GITHUB_API_URL must be an http(s) URL, got {github_api_url!r}")

    state_configmap = text("STATE_CONFIGMAP") or (f"ci-runner-{release}" if release else "")
    too_long = len(state_configmap) > 253
    if state_configmap and (too_long or not _DNS_SUBDOMAIN.match(state_configmap)):
        problems.append(f"STATE_CONFIGMAP must be a valid ConfigMap name, got {state_configmap!r}")

    log_format = (text("LOG_FORMAT", "text") or "text").lower()
    if log_format not in {"text", "json"}:
        problems.append(f"LOG_FORMAT must be text or json, got {log_format!r}")

    secrets: dict[str, str | None] = {}
    for name in ("GIT_TOKEN_SECRET", "REGISTRY_SECRET"):
        secret = text(name)
        if secret is not None and not _DNS_SUBDOMAIN.match(secret):
            problems.append(f"{name} must be a valid Secret name, got {secret!r}")
        secrets[name] = secret

    dockerfile = text("DOCKERFILE", "Dockerfile") or "Dockerfile"
    build_context = (text("BUILD_CONTEXT", ".") or ".").strip("/") or "."
    for name, value in (("DOCKERFILE", dockerfile), ("BUILD_CONTEXT", build_context)):
        if not _relative_path(value):
            problems.append(f"{name} must be a relative path inside the repository, got {value!r}")

    keys = {}
    for name, default in (
        ("IMAGE_REPOSITORY_KEY", "image.repository"),
        ("IMAGE_TAG_KEY", "image.tag"),
    ):
        value = text(name, default) or default
        if any(not part for part in value.split(".")):
            problems.append(f"{name} must be a dotted values key like {default}, got {value!r}")
        keys[name] = value
    if keys["IMAGE_REPOSITORY_KEY"] == keys["IMAGE_TAG_KEY"]:
        problems.append("IMAGE_REPOSITORY_KEY and IMAGE_TAG_KEY must differ")

    values_files = tuple(f.strip() for f in (text("VALUES_FILES") or "").split(",") if f.strip())
    for values_file in values_files:
        if not _relative_path(values_file):
            problems.append(f"VALUES_FILES entries must be paths in the chart, got {values_file!r}")

    if problems:
        raise ConfigError(problems)
    return Settings(
        repo=repo,
        branch=branch,
        image=image,
        chart_path=chart_path,
        release=release,
        cicd_namespace=namespaces["CICD_NS"],
        deploy_namespace=namespaces["DEPLOY_NS"],
        max_retries=max_retries,
        git_token=text("GIT_TOKEN"),
        git_token_secret=secrets["GIT_TOKEN_SECRET"],
        registry_secret=secrets["REGISTRY_SECRET"],
        verify_ssl=verify_ssl,
        github_api_url=github_api_url,
        kaniko_image=text("KANIKO_IMAGE", DEFAULT_KANIKO_IMAGE) or DEFAULT_KANIKO_IMAGE,
        build_timeout=build_timeout,
        helm_timeout=helm_timeout,
        api_timeout=api_timeout,
        state_configmap=state_configmap,
        log_format=log_format,
        dockerfile=dockerfile,
        build_context=build_context,
        image_repository_key=keys["IMAGE_REPOSITORY_KEY"],
        image_tag_key=keys["IMAGE_TAG_KEY"],
        values_files=values_files,
        create_namespace=create_namespace,
    )
