"""The command line: ``ci-runner run`` and ``ci-runner status``. Thin: parse, then one call.

Every setting's option comes from the settings table; click only collects strings, and
``settings.load`` validates them all at once, so a user sees every problem in one go.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click

from . import __version__, cycle, kube, logs
from .errors import CiRunnerError
from .settings import OBSOLETE, Settings, StateSettings, load, secrets, table
from .state import read_configmap, status_report

log = logging.getLogger("ci_runner")

# At exit the interpreter's last garbage collection walks every object the imports made (0.2 s
# and more after the kubernetes client) only to free memory the process hands back anyway.
# atexit handlers run before it, and frozen objects are left out of it.
atexit.register(gc.freeze)

EXIT_CODES = """\b
Exit codes:
  0  deployed, nothing to do, given up earlier, or another run holds the lock
  1  this cycle's build or deploy failed (an attempt was counted)
  2  configuration or usage error; nothing was touched
  3  an outside service failed (GitHub or the Kubernetes API); state unchanged
"""

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=StateSettings)


def setting_options(kind: type[StateSettings]) -> Callable[[F], F]:
    """One option per setting of ``kind``, with its type, environment variable and default."""

    def decorate(command: F) -> F:
        for f, spec in reversed(table(kind)):
            notes = [f"env: {spec.env}"]
            if spec.required:
                notes.append("required")
            elif spec.shown_default:
                notes.append(f"default: {spec.shown_default}")
            text = f"{spec.help}  [{'; '.join(notes)}]"
            if spec.is_flag:
                flag = spec.option.removeprefix("--")
                option = click.option(f"--{flag}/--no-{flag}", f.name, default=None, help=text)
            else:
                option = click.option(spec.option, f.name, metavar=spec.metavar, help=text)
            command = option(command)
        return command

    return decorate


def _load(kind: type[S], options: dict[str, Any], masked: list[str]) -> S:
    try:
        return load(kind, options, os.environ)
    except CiRunnerError as e:
        _fail(e, masked)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Kubernetes stops a pod with SIGTERM and kills it 30 s later. Exiting through Python's
    # unwinding cancels helm (pyhelm3 passes it the SIGTERM; it is killed if it takes too
    # long) and then releases the Lease.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough
    helm = sys.modules.get("ci_runner.helm")
    if helm is not None:
        helm.kill_helm_after_grace()
    raise SystemExit(128 + signum)


def _fail(error: CiRunnerError, masked: list[str]) -> NoReturn:
    message = str(error)
    for secret in masked:
        message = message.replace(secret, logs.REDACTED)
    click.echo(f"Error: {message}", err=True)
    sys.exit(error.exit_code)


@click.group(epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="ci-runner")
def main() -> None:
    """Keep a Helm release on the head of a GitHub branch, one cycle per run."""


@main.command(epilog=EXIT_CODES)
@setting_options(Settings)
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--force", is_flag=True, help="Build and deploy the head even if deployed/given up.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def run(dry_run: bool, force: bool, verbose: bool, **options: Any) -> None:
    """Run one check-build-deploy cycle, then exit.

    Reads the head of BRANCH; if it is not deployed, builds it with a Kaniko Job and runs
    helm upgrade --install with rollback on failure. Every option is also an environment variable.
    """
    masked = secrets(options, os.environ)
    settings = _load(Settings, options, masked)
    logs.setup(settings.log_format, masked, verbose)
    signal.signal(signal.SIGTERM, _terminate)
    for name, replacement in OBSOLETE.items():
        if os.environ.get(name):
            log.warning("%s is ignored: %s", name, replacement)
    try:
        outcome = cycle.run(settings, dry_run=dry_run, force=force)
    except CiRunnerError as e:
        if settings.log_format == "json":  # log pipelines get the error as a record too
            log.error("%s", e)
        _fail(e, masked)
    if dry_run:
        click.echo(outcome.message)
    elif outcome.exit_code:
        log.error("%s", outcome.message)
    else:
        log.info("%s", outcome.message)
    sys.exit(outcome.exit_code)


@main.command(epilog=EXIT_CODES)
@setting_options(StateSettings)
@click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def status(output: str, **options: Any) -> None:
    """Show the state of a release: what is deployed and the attempts on the commit under way."""
    where = _load(StateSettings, options, [])
    try:
        with kube.connect(where.verify_ssl, where.api_timeout) as api:
            configmap = read_configmap(api, where)
    except CiRunnerError as e:
        _fail(e, [])
    report = status_report(configmap, where)
    if output == "json":
        click.echo(json.dumps(report, indent=2))
    elif configmap is None:
        click.echo(f"no state for release {where.release} in namespace {where.cicd_namespace}")
    else:
        width = max(len(k) for k in report)
        for key, value in report.items():
            click.echo(f"{key:<{width}}  {'-' if value is None else value}")
