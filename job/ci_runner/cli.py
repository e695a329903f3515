"""The command line: ``ci-runner run`` and ``ci-runner status``. Thin: parse, then one call."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

import click

from . import __version__, cycle, kube, logs
from .errors import CiRunnerError, ConfigError
from .settings import DEFAULT_GITHUB_API_URL, DEFAULT_KANIKO_IMAGE, OBSOLETE, Settings, load
from .state import StateStore, status_report

log = logging.getLogger("ci_runner")

EXIT_CODES = """\b
Exit codes:
  0  deployed, nothing to do, given up earlier, or another run holds the lock
  1  this cycle's build or deploy failed (an attempt was counted)
  2  configuration or usage error; nothing was touched
  3  an outside service failed (GitHub or the Kubernetes API); state unchanged
"""

# (option, environment variable, help) for every setting; all are parsed by settings.load so
# that every problem is reported at once, not click's first one.
RUN_OPTIONS = [
    ("--repo", "REPO", "GitHub repository, owner/name. Required."),
    ("--branch", "BRANCH", "Branch to follow.  [default: main]"),
    ("--image", "IMAGE", "Image repository without tag, e.g. ghcr.io/team/app. Required."),
    ("--chart-path", "CHART_PATH", "Path of the Helm chart in the repository. Required."),
    ("--release", "RELEASE", "Helm release name. Required."),
    ("--cicd-namespace", "CICD_NS", "Namespace of state, lock and build Jobs.  [default: cicd]"),
    ("--deploy-namespace", "DEPLOY_NS", "Namespace of the release.  [default: default]"),
    ("--max-retries", "MAX_RETRIES", "Attempts per commit before giving up.  [default: 3]"),
    ("--git-token", "GIT_TOKEN", "GitHub token (prefer the environment variable)."),
    ("--git-token-secret", "GIT_TOKEN_SECRET", "Secret in the CICD namespace (key 'token') "
     "that build Jobs use; default: the runner keeps ci-runner-<RELEASE>-git from GIT_TOKEN."),
    ("--registry-secret", "REGISTRY_SECRET", "dockerconfigjson Secret in the CICD namespace "
     "for Kaniko's push."),
    ("--github-api-url", "GITHUB_API_URL", "GitHub API root (GitHub Enterprise: "
     f"https://HOST/api/v3).  [default: {DEFAULT_GITHUB_API_URL}]"),
    ("--kaniko-image", "KANIKO_IMAGE", f"Kaniko image.  [default: {DEFAULT_KANIKO_IMAGE}]"),
    ("--build-timeout", "BUILD_TIMEOUT", "Seconds a build may take.  [default: 1800]"),
    ("--helm-timeout", "HELM_TIMEOUT", "Seconds helm waits for readiness.  [default: 300]"),
    ("--api-timeout", "API_TIMEOUT", "Seconds per GitHub/Kubernetes request.  [default: 30]"),
    ("--state-configmap", "STATE_CONFIGMAP", "State ConfigMap and Lease name.  "
     "[default: ci-runner-<RELEASE>]"),
    ("--log-format", "LOG_FORMAT", "text or json.  [default: text]"),
    ("--dockerfile", "DOCKERFILE", "Dockerfile, relative to the build context.  "
     "[default: Dockerfile]"),
    ("--build-context", "BUILD_CONTEXT", "Build context directory in the repository.  "
     "[default: .]"),
    ("--image-repository-key", "IMAGE_REPOSITORY_KEY", "Values key for the image repository.  "
     "[default: image.repository]"),
    ("--image-tag-key", "IMAGE_TAG_KEY", "Values key for the image tag.  [default: image.tag]"),
    ("--values-files", "VALUES_FILES", "Comma-separated values files inside the chart."),
    ("--create-namespace", "CREATE_NAMESPACE", "true: helm creates DEPLOY_NS if missing "
     "(needs namespace get/create); false: it must exist.  [default: true]"),
]  # fmt: skip
STATUS_OPTIONS = [o for o in RUN_OPTIONS if o[1] in {
    "REPO", "BRANCH", "RELEASE", "CICD_NS", "MAX_RETRIES", "STATE_CONFIGMAP", "API_TIMEOUT",
}]  # fmt: skip


def _env_name(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def setting_options(table: list[tuple[str, str, str]]) -> Callable[[Any], Any]:
    """Add one string option per setting, each also read from its environment variable."""

    def decorate(command: Any) -> Any:
        for option, env, text in reversed(table):
            command = click.option(
                option, _env_name(option), envvar=env, help=f"{text}  [env: {env}]"
            )(command)
        return click.option(
            "--verify-ssl/--no-verify-ssl",
            default=None,
            help="Check TLS certificates of Kubernetes and GitHub.  [env: VERIFY_SSL; default: on]",
        )(command)

    return decorate


def _settings(table: list[tuple[str, str, str]], params: dict[str, Any], **kwargs: Any) -> Settings:
    raw: dict[str, str | None] = {env: params[_env_name(o)] for o, env, _ in table}
    verify = params["verify_ssl"]
    raw["VERIFY_SSL"] = os.environ.get("VERIFY_SSL") if verify is None else str(verify)
    return load(raw, **kwargs)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Kubernetes stops a pod with SIGTERM. Exiting through Python's unwinding releases the Lease
    # and cancels helm, which pyhelm3 then terminates gently so helm can roll back.
    raise SystemExit(128 + signum)


def _fail(error: CiRunnerError, secrets: list[str | None]) -> NoReturn:
    message = str(error)
    for secret in secrets:
        if secret:
            message = message.replace(secret, logs.REDACTED)
    click.echo(f"Error: {message}", err=True)
    sys.exit(error.exit_code)


@click.group(epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="ci-runner")
def main() -> None:
    """Keep a Helm release on the head of a GitHub branch, one cycle per run."""


@main.command(epilog=EXIT_CODES)
@setting_options(RUN_OPTIONS)
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--force", is_flag=True, help="Build and deploy the head even if deployed/given up.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def run(dry_run: bool, force: bool, verbose: bool, **params: Any) -> None:
    """Run one check-build-deploy cycle, then exit.

    Reads the head of BRANCH; if it is not deployed, builds it with a Kaniko Job and runs
    helm upgrade --install with rollback on failure. Every option is also an environment variable.
    """
    token = params.get("git_token") or os.environ.get("GIT_TOKEN")
    try:
        settings = _settings(RUN_OPTIONS, params)
    except ConfigError as e:
        _fail(e, [token])
    logs.setup(settings.log_format, [token or ""], verbose)
    signal.signal(signal.SIGTERM, _terminate)
    for name, replacement in OBSOLETE.items():
        if os.environ.get(name):
            log.warning("%s is ignored: %s", name, replacement)
    try:
        outcome = cycle.run(settings, dry_run=dry_run, force=force)
    except CiRunnerError as e:
        if settings.log_format == "json":  # log pipelines get the error as a record too
            log.error("%s", e)
        _fail(e, [token])
    if dry_run:
        click.echo(outcome.message)
    elif outcome.exit_code:
        log.error("%s", outcome.message)
    else:
        log.info("%s", outcome.message)
    sys.exit(outcome.exit_code)


@main.command(epilog=EXIT_CODES)
@setting_options(STATUS_OPTIONS)
@click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def status(output: str, **params: Any) -> None:
    """Show the state of a release: what is deployed and the attempts on the commit under way."""
    try:
        settings = _settings(STATUS_OPTIONS, params, require=("RELEASE",))
        with kube.connect(settings.verify_ssl) as api:
            configmap = StateStore(api, settings).read_configmap()
    except CiRunnerError as e:
        _fail(e, [])
    report = status_report(configmap, settings)
    if output == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        width = max(len(k) for k in report)
        for key, value in report.items():
            click.echo(f"{key:<{width}}  {'-' if value is None else value}")
