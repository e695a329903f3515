"""The runner's settings: one declarative table.

Each field of the frozen dataclasses below *is* a row of the table: its environment variable,
its option, the parser that validates it, its default and its help text. The click options of
every command, the validation that names every problem at once, the README's configuration
table (checked by a test) and the chart's environment all follow from these rows;
``loading.py`` parses and validates them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

from .. import __version__
from .. import parsing as p
from ..parsing import DEFAULT_KANIKO_IMAGE, Spec, setting

DEFAULT_GITHUB_API_URL = "https://api.github.com"
# The runner's own published image (the chart's runner.image at its appVersion): the build pod
# runs it as the init container that fetches the build context. The downward API cannot tell a
# pod its own image, so a run is told (the chart and the manifests set RUNNER_IMAGE).
DEFAULT_RUNNER_IMAGE = f"ghcr.io/ci-runner/ci-runner:{__version__}"


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
    tarball_timeout: int = setting(
        "TARBALL_TIMEOUT",
        "Seconds the download of a commit's tarball may take in all (one that stalls, no byte "
        "for API_TIMEOUT seconds, is given up on sooner), and again its unpacking.",
        default=600,
        parse=p.positive,
        metavar="SECONDS",
    )
    verify_ssl: bool | None = setting(
        "VERIFY_SSL",
        "Check TLS certificates: true or false for the Kubernetes API, GitHub and NOTIFY_URL; "
        "unset: the kubeconfig decides for Kubernetes (insecure-skip-tls-verify), GitHub and "
        "NOTIFY_URL are checked.",
        default=None,
        parse=p.boolean,
        metavar="BOOLEAN",
    )

    deployer: str | None = setting(
        "DEPLOYER",
        "ServiceAccount in DEPLOY_NS that helm acts as (--kube-as-user system:serviceaccount:"
        "DEPLOY_NS:DEPLOYER, which needs impersonate on that ServiceAccount), so that the app's "
        "chart can do and read only what that account may; unset: helm runs as the runner.",
        default=None,
        parse=p.object_name("ServiceAccount"),
        metavar="NAME",
    )

    def deployer_in(self, namespace: str) -> str | None:
        """The user helm impersonates in ``namespace``: DEPLOYER's name as the API server
        names a ServiceAccount (k8s.io/apiserver authentication/serviceaccount MakeUsername);
        None without DEPLOYER. ``status`` asks helm as it too, where the state names the
        release's namespace."""
        if self.deployer is None:
            return None
        return f"system:serviceaccount:{namespace}:{self.deployer}"

    @property
    def verify_https(self) -> bool:
        """Whether GitHub's and NOTIFY_URL's certificates are checked (no kubeconfig speaks for
        them): only an explicit VERIFY_SSL=false turns that off."""
        return self.verify_ssl is not False

    log_format: str = setting(
        "LOG_FORMAT",
        "text, or json (one object per line).",
        default="text",
        parse=p.log_format,
        metavar="[text|json]",
    )


@dataclass(frozen=True, kw_only=True)
class Settings(StateSettings):
    """Everything one run needs to know, validated. The rows keep the order the CLI's help, its
    messages and the README have always shown: where the state is (``StateSettings``), the
    build, GitHub and reporting, then the app itself."""

    # -- the build: which commits are built (WATCH_PATHS), Kaniko's image, flags and pod ------

    kaniko_image: str = setting(
        "KANIKO_IMAGE",
        "Kaniko executor image of the build Job (the maintained fork, pinned).",
        default=DEFAULT_KANIKO_IMAGE,
    )
    runner_image: str = setting(
        "RUNNER_IMAGE",
        "This runner's own image: the build pod's init container runs it to fetch the commit's "
        "build context, so that Kaniko never holds the GitHub token (the chart sets its own).",
        default=DEFAULT_RUNNER_IMAGE,
    )
    build_timeout: int = setting(
        "BUILD_TIMEOUT",
        "Seconds a build may take (the Job's activeDeadlineSeconds).",
        default=1800,
        parse=p.positive,
        metavar="SECONDS",
    )
    build_start_grace: int = setting(
        "BUILD_START_GRACE",
        "Seconds a build pod may be kept from starting by what can resolve by itself (an image "
        "pull back-off, a volume not mountable yet, a quota, no node yet) before the attempt "
        "fails; doubled while a cluster autoscaler adds a node; at most BUILD_TIMEOUT/4.",
        default=300,
        parse=p.positive,
        metavar="SECONDS",
    )
    dockerfile: str = setting(
        "DOCKERFILE",
        "Dockerfile, relative to the build context.",
        default="Dockerfile",
        parse=p.file_path,
        metavar="PATH",
    )
    build_context: str = setting(
        "BUILD_CONTEXT",
        "Build context directory in the repository.",
        default=".",
        parse=p.directory,
        metavar="PATH",
    )
    build_cache: bool = setting(
        "BUILD_CACHE",
        "Kaniko's layer cache in a registry repository (--cache=true --cache-repo --cache-ttl).",
        default=False,
        parse=p.boolean,
        metavar="BOOLEAN",
    )
    cache_repo: str = setting(
        "CACHE_REPO",
        "Repository of the layer cache (with BUILD_CACHE).",
        default="",
        parse=p.image,
        shown="<IMAGE>/cache",
        metavar="REPOSITORY",
    )
    build_cache_ttl: str = setting(
        "BUILD_CACHE_TTL",
        "How long a cached layer is used (Kaniko's --cache-ttl, a Go duration).",
        default="168h",
        parse=p.duration,
        metavar="DURATION",
    )
    build_args: tuple[tuple[str, str], ...] = setting(
        "BUILD_ARGS",
        "Comma-separated KEY=VALUE build arguments (visible in the Job: no secrets); "
        "CI_RUNNER_SHA and CI_RUNNER_BRANCH are always passed.",
        default=(),
        parse=p.build_args,
        metavar="KEY=VALUE,...",
    )
    kaniko_args: tuple[str, ...] = setting(
        "KANIKO_ARGS",
        "More Kaniko flags, split as a shell splits words; not those the runner sets.",
        default=(),
        parse=p.kaniko_args,
        metavar="FLAGS",
    )
    build_pod: Mapping[str, Any] | None = setting(
        "BUILD_POD",
        "JSON: the build pod's resources, nodeSelector, tolerations, affinity, "
        "serviceAccountName, priorityClassName and imagePullSecrets.",
        default=None,
        parse=p.build_pod,
        metavar="JSON",
    )
    registry_insecure: bool = setting(
        "REGISTRY_INSECURE",
        "Push to a plain-HTTP registry (Kaniko's --insecure --skip-tls-verify).",
        default=False,
        parse=p.boolean,
        metavar="BOOLEAN",
    )

    watch_paths: tuple[str, ...] = setting(
        "WATCH_PATHS",
        "Comma-separated globs (** spans directories); a commit that changes none of them (nor "
        "CHART_PATH) since the deployed one is not built.",
        default=(),
        parse=p.patterns,
        metavar="GLOBS",
    )

    require_checks: tuple[str, ...] = setting(
        "REQUIRE_CHECKS",
        "Comma-separated check-run or commit-status names, or 'all': a commit is built only "
        "once GitHub reports them successful on it (STATUS_CONTEXT excluded); a failed one "
        "skips it.",
        default=(),
        parse=p.check_names,
        metavar="NAMES",
    )

    # -- GitHub: where it is, App credentials, and what GitHub and the operator are told ------

    github_api_url: str = setting(
        "GITHUB_API_URL",
        "GitHub API root (GitHub Enterprise Server: https://HOST/api/v3; "
        "GHE.com: https://api.SUBDOMAIN.ghe.com).",
        default=DEFAULT_GITHUB_API_URL,
        parse=p.github_api_url,
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

    # -- the app: its repository, image, chart and release ------------------------------------

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
        "GitHub token for the API and the tarball, the build pod's too (prefer the variable).",
        default=None,
        parse=p.credential,
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
    helm_force_conflicts: bool = setting(
        "HELM_FORCE_CONFLICTS",
        "helm 4 only: take over fields another field manager owns (an HPA's or `kubectl scale`'s "
        "replicas) with --force-conflicts; false: such a deploy fails and says so.",
        default=False,
        parse=p.boolean,
        metavar="BOOLEAN",
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
        "Create DEPLOY_NS and CICD_NS when they are missing (CICD_NS labelled Pod Security "
        "baseline; needs get/create on namespaces); false: they must exist.",
        default=True,
        parse=p.boolean,
        metavar="BOOLEAN",
    )

    history_limit: int = setting(
        "HISTORY_LIMIT",
        "Deploys the state keeps for `ci-runner history` (newest first).",
        default=10,
        parse=p.positive,
        metavar="INTEGER",
    )

    def cache_repository(self, image: str) -> str:
        """Where the layer cache goes: CACHE_REPO, else ``<image>/cache`` (Kaniko's own
        inference from the destination, README "Flag --cache-repo", made explicit)."""
        return self.cache_repo or f"{image}/cache"

    @property
    def uses_app(self) -> bool:
        """Whether the runner authenticates as a GitHub App installation."""
        return self.github_app_id is not None

    @property
    def secret_values(self) -> list[str]:
        """The values of the secret settings given, to mask wherever outside text is kept."""
        return [
            str(getattr(self, f.name))
            for f, spec in table(Settings)
            if spec.secret and getattr(self, f.name)
        ]

    @property
    def token_secret_name(self) -> str | None:
        """The Secret that carries the token to the build pod's init container (which fetches
        the build context; Kaniko never holds it), if the build needs one."""
        if self.git_token_secret:
            return self.git_token_secret
        kept = self.git_token or self.uses_app
        return f"ci-runner-{self.release}-git" if kept else None

    @property
    def deployer_user(self) -> str | None:
        """The user helm impersonates: DEPLOYER's name as the API server names a
        ServiceAccount (k8s.io/apiserver authentication/serviceaccount MakeUsername)."""
        return self.deployer_in(self.deploy_namespace)

    @property
    def has_credentials(self) -> bool:
        """Whether GitHub requests are authorised (statuses and deployments need it)."""
        return bool(self.git_token) or self.uses_app

    @property
    def latest_tag(self) -> str:
        """The moving tag: the branch with '/' (and anything else a tag refuses) made '-',
        then ``-latest``; at most 128 characters, as registries require."""
        return _NOT_IN_TAG.sub("-", self.branch)[: 128 - len("-latest")] + "-latest"


FLEET_SELECTOR = "app.kubernetes.io/component=runner,ci-runner.io/app"
"""The labels of the per-app CronJobs the chart installs (templates/cronjob.yaml)."""


@dataclass(frozen=True, kw_only=True)
class FleetSettings:
    """``ci-runner fleet``: one check of many apps' heads, a Job only where there is work.

    The apps' own settings are not here: each comes from its CronJob's pod template."""

    cicd_namespace: str = setting(
        "CICD_NS",
        "Namespace of the apps' CronJobs, their state and Jobs, and the fleet's own record.",
        default="cicd",
        parse=p.namespace,
        option="--cicd-namespace",
        metavar="NAMESPACE",
    )
    fleet_selector: str = setting(
        "FLEET_SELECTOR",
        "Label selector of the apps' CronJobs this fleet serves (several fleets: one each).",
        default=FLEET_SELECTOR,
        parse=p.label_selector,
        metavar="SELECTOR",
    )
    fleet_token_secret: str | None = setting(
        "FLEET_TOKEN_SECRET",
        "Secret in CICD_NS whose key 'token' is the fleet's read-only GitHub token (contents: "
        "read on every app's repository); read by name, never an app's. This or "
        "FLEET_APP_SECRET.",
        default=None,
        parse=p.secret_name,
        metavar="NAME",
    )
    fleet_app_secret: str | None = setting(
        "FLEET_APP_SECRET",
        "Secret in CICD_NS with the fleet's GitHub App: keys 'app-id', 'installation-id' and "
        "'private-key' (an installation with contents: read on every app's repository); "
        "instead of FLEET_TOKEN_SECRET.",
        default=None,
        parse=p.secret_name,
        metavar="NAME",
    )
    fleet_app_token_secret: str = setting(
        "FLEET_APP_TOKEN_SECRET",
        "Secret in CICD_NS where the fleet keeps its App's installation token between runs "
        "(with FLEET_APP_SECRET; it must exist: the chart creates it empty).",
        default="ci-runner-fleet-token",
        parse=p.secret_name,
        metavar="NAME",
    )
    fleet_record: str = setting(
        "FLEET_RECORD",
        "ConfigMap in CICD_NS where the fleet keeps GitHub's ETags and each app's last answer "
        "(it must exist: the chart creates it).",
        default="ci-runner-fleet",
        parse=p.configmap_name,
        metavar="NAME",
    )
    github_api_url: str = setting(
        "GITHUB_API_URL",
        "GitHub API root the fleet's token is for; an app on another is reported, not asked.",
        default=DEFAULT_GITHUB_API_URL,
        parse=p.github_api_url,
        metavar="URL",
    )
    fleet_concurrency: int = setting(
        "FLEET_CONCURRENCY",
        "GitHub requests in flight at once (GitHub allows at most 100).",
        default=8,
        parse=p.at_most(32),
        metavar="INTEGER",
    )
    fleet_deadline: int = setting(
        "FLEET_DEADLINE",
        "Seconds a fleet run may spend asking GitHub; apps not asked by then are asked first "
        "by the next run.",
        default=40,
        parse=p.positive,
        metavar="SECONDS",
    )
    api_timeout: int = setting(
        "API_TIMEOUT",
        "Seconds any single GitHub or Kubernetes API request may take.",
        default=30,
        parse=p.positive,
        metavar="SECONDS",
    )
    verify_ssl: bool | None = setting(
        "VERIFY_SSL",
        "Check TLS certificates: true or false for the Kubernetes API and GitHub; unset: the "
        "kubeconfig decides for Kubernetes, GitHub is checked.",
        default=None,
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


FETCH_SETTINGS = (
    "REPO",
    "GITHUB_API_URL",
    "GIT_TOKEN",
    "BUILD_CONTEXT",
    "API_TIMEOUT",
    "TARBALL_TIMEOUT",
    "VERIFY_SSL",
    "LOG_FORMAT",
)
"""The rows of Settings the build pod's init container reads (``ci-runner fetch-context``):
the Job passes each as the run has it, GIT_TOKEN from the token Secret."""


@dataclass(frozen=True, kw_only=True)
class FetchSettings:
    """What ``ci-runner fetch-context`` needs: the FETCH_SETTINGS rows, parsed as Settings
    parses them. It talks to GitHub with a token only, never as the App."""

    repo: str
    github_api_url: str
    git_token: str | None = field(repr=False)  # a secret stays out of repr, as in Settings
    build_context: str
    api_timeout: int
    tarball_timeout: int
    verify_ssl: bool | None
    log_format: str
    uses_app = False

    @property
    def verify_https(self) -> bool:
        """As Settings.verify_https: only VERIFY_SSL=false turns GitHub's TLS check off."""
        return self.verify_ssl is not False


def table(kind: type[Any] = Settings) -> list[tuple[Field[Any], Spec]]:
    """The settings of ``kind`` in order, each with its Spec."""
    return [(f, f.metadata["setting"]) for f in fields(kind)]
