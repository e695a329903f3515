"""The command line: ``ci-runner run``, ``check`` and ``status``. Thin: parse, then one call.

Every setting's option comes from the settings table; click only collects strings, and
``config.load`` validates them all at once, so a user sees every problem in one go.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click

from . import __version__, checklist, logs, stopping
from .config import (
    OBSOLETE,
    FleetSettings,
    Settings,
    StateSettings,
    given_secrets,
    load,
    load_fetch,
    misspelt,
    table,
)
from .errors import CiRunnerError, ConfigError
from .run import cycle
from .run.status import release_history, release_status

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
  143  stopped by SIGTERM: helm told to stop, the Lease released
"""

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S")


def setting_options(kind: type[Any]) -> Callable[[F], F]:
    """One option per setting of ``kind``, with its type, environment variable and default."""

    def decorate(command: F) -> F:
        # Required settings first in --help, the rest in the table's order (click lists options
        # in the order they are added, so they are added last to first).
        ordered = sorted(table(kind), key=lambda row: not row[1].required)
        for f, spec in reversed(ordered):
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
        # Even settings that did not validate say how errors should look.
        wanted = options.get("log_format") or os.environ.get("LOG_FORMAT") or ""
        _fail(e, masked, as_json=wanted.strip().lower() == "json")


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Kubernetes stops a pod with SIGTERM and kills it 30 s later. helm gets it too (and is
    # killed if it takes too long); exiting through Python's unwinding waits for helm, then
    # releases the Lease.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough
    stopping.request(signum)  # a running helm stopped; and in case the SystemExit below is lost
    raise SystemExit(128 + signum)


def _fail(error: CiRunnerError, masked: list[str], as_json: bool = False) -> NoReturn:
    message = logs.mask(str(error), masked)
    if as_json:  # log pipelines get every stderr line as one JSON object
        entry = {"level": "error", "message": message, "exitCode": error.exit_code}
        click.echo(json.dumps(entry), err=True)
    else:
        click.echo(f"Error: {message}", err=True)
    sys.exit(error.exit_code)


def _json_wanted(argv: list[str]) -> bool:
    """Whether the user asked for JSON logs, read before any validation."""
    for i, word in enumerate(argv):
        if word == "--log-format" and i + 1 < len(argv):
            return argv[i + 1].lower() == "json"
        if word.startswith("--log-format="):
            return word.partition("=")[2].lower() == "json"
    return os.environ.get("LOG_FORMAT", "").strip().lower() == "json"


class _Group(click.Group):
    """A group whose own usage errors (an unknown option, a bad choice) are one JSON object
    too when JSON logs were asked for, like every other line the runner writes."""

    def main(self, args: Any = None, **extra: Any) -> NoReturn:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        try:
            code = super().main(args=args, standalone_mode=False, **extra)
        except click.ClickException as e:
            argv = list(args) if args is not None else sys.argv[1:]
            if _json_wanted(argv):
                entry = {"level": "error", "message": e.format_message(), "exitCode": e.exit_code}
                click.echo(json.dumps(entry), err=True)
            else:
                e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Group, epilog=EXIT_CODES)
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
    masked = given_secrets(options, os.environ)
    settings = _load(Settings, options, masked)
    logs.setup(settings.log_format, masked, verbose)
    signal.signal(signal.SIGTERM, _terminate)
    for name, replacement in OBSOLETE.items():
        if os.environ.get(name):
            log.warning("%s is ignored: %s", name, replacement)
    for variable, setting in misspelt(Settings, os.environ):
        log.warning("%s is no setting and is ignored: did you mean %s?", variable, setting)
    try:
        outcome = cycle.run(settings, dry_run=dry_run, force=force)
    except CiRunnerError as e:
        _fail(e, masked, as_json=settings.log_format == "json")
    if dry_run:
        click.echo(outcome.message)
    level = logging.ERROR if outcome.exit_code else logging.INFO
    message = "dry run: nothing was written" if dry_run else outcome.message
    log.log(level, "%s", message, extra={"exitCode": outcome.exit_code})
    sys.exit(outcome.exit_code)


CHECK_EXIT_CODES = """\b
Exit codes:
  0  every check passed
  2  something is misconfigured or missing (credentials GitHub refuses included)
  3  a service cannot be reached (GitHub, the Kubernetes API) and nothing is misconfigured
"""


@main.command(epilog=CHECK_EXIT_CODES)
@setting_options(Settings)
@click.option(
    "--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def check(output: str, **options: Any) -> None:
    """Check the setup before a first run, writing nothing: the Kubernetes API, both
    namespaces, every permission the runner needs, the Secrets, helm, GitHub and the
    credentials, the repository and branch, and the head commit's chart (helm lint).

    Takes the same settings as run; prints one line per item, with what to do when it fails.
    """
    # Not at the top: check loads the build, helm (pyhelm3, YAML) and the archive, which an
    # idle `run` never needs, and the CLI is imported by every run.
    from .run import check as checks

    masked = given_secrets(options, os.environ)
    settings = _load(Settings, options, masked)
    logs.setup(settings.log_format, masked)
    logging.getLogger("ci_runner.github").setLevel(logging.ERROR)  # the report says it all
    results = checks.run_checks(settings)
    # Masked as every log line is: each form of each credential, those learnt included.
    click.echo(logs.mask(checklist.render(results, output), masked))
    sys.exit(checklist.exit_code(results))


@main.command(epilog=EXIT_CODES)
@setting_options(StateSettings)
@click.option(
    "--output",
    "-o",
    # text, as `check -o` says; `table` (its first name) is still taken
    type=click.Choice(["text", "json", "table"]),
    default="text",
    show_default=True,
)
def status(output: str, **options: Any) -> None:
    """Show the state of a release: what is deployed and the attempts on the commit under way."""
    where = _load(StateSettings, options, [])
    try:
        found, report = release_status(where)
    except CiRunnerError as e:
        _fail(e, [], as_json=where.log_format == "json")
    if output == "json":
        click.echo(json.dumps(report, indent=2))
    elif not found:
        click.echo(f"no state for release {where.release} in namespace {where.cicd_namespace}")
    else:
        width = max(len(k) for k in report)
        for key, value in report.items():
            click.echo(f"{key:<{width}}  {'-' if value is None else value}")
    if not found:
        # A release no run has recorded: a typo in RELEASE (or CICD_NS, STATE_CONFIGMAP) reads
        # the same as one never run, and neither is "nothing to worry about" (exit 0).
        click.echo(
            f"Error: release {where.release} has no state ConfigMap "
            f"{where.state_configmap} in CICD_NS {where.cicd_namespace}: check RELEASE "
            "and CICD_NS, or trigger its first run",
            err=True,
        )
        sys.exit(2)


@main.command(epilog=EXIT_CODES)
@setting_options(StateSettings)
@click.option(
    "--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def history(output: str, **options: Any) -> None:
    """Show a release's recorded deploys, newest first: commit, helm revision, time, image
    digest, and how it was deployed (HISTORY_LIMIT of them)."""
    where = _load(StateSettings, options, [])
    try:
        deploys = release_history(where)
    except CiRunnerError as e:
        _fail(e, [], as_json=where.log_format == "json")
    if output == "json":
        click.echo(json.dumps(deploys, indent=2))
        return
    if not deploys:
        click.echo(f"no deploys recorded for release {where.release} in {where.cicd_namespace}")
    for d in deploys:
        pinned = d["digest"] or "(by tag)"
        click.echo(f"{d['sha'][:12]}  revision {d['revision']}  {d['at']}  {d['how']}  {pinned}")


@main.command(epilog=EXIT_CODES)
@setting_options(Settings)
def pin(**options: Any) -> None:
    """Pin the release at what is deployed now: runs deploy nothing until `ci-runner unpin`."""
    _pin(options, on=True)


@main.command(epilog=EXIT_CODES)
@setting_options(Settings)
def unpin(**options: Any) -> None:
    """Let the next run deploy the branch head again."""
    _pin(options, on=False)


def _pin(options: dict[str, Any], on: bool) -> None:
    masked = given_secrets(options, os.environ)
    settings = _load(Settings, options, masked)
    logs.setup(settings.log_format, masked, False)
    try:
        click.echo(cycle.pin(settings, on=on))
    except CiRunnerError as e:
        _fail(e, masked, as_json=settings.log_format == "json")


@main.command(epilog=EXIT_CODES)
@setting_options(Settings)
@click.option(
    "--to",
    "to",
    metavar="SHA",
    help="A deployed commit (see `history`); default: the one before the current.",
)
def rollback(to: str | None, **options: Any) -> None:
    """Redeploy a recorded deploy with its own chart and image (no build), and pin it there."""
    masked = given_secrets(options, os.environ)
    settings = _load(Settings, options, masked)
    logs.setup(settings.log_format, masked, False)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        outcome = cycle.rollback(settings, to)
    except CiRunnerError as e:
        _fail(e, masked, as_json=settings.log_format == "json")
    level = logging.ERROR if outcome.exit_code else logging.INFO
    log.log(level, "%s", outcome.message, extra={"exitCode": outcome.exit_code})
    sys.exit(outcome.exit_code)


FLEET_EXIT_CODES = """\b
Exit codes:
  0  every app was looked at (an app's own trouble is in the summary and an Event on its CronJob)
  2  the fleet's own configuration is wrong (its settings, token Secret, record ConfigMap)
  3  the Kubernetes API failed; nothing was created
"""


@main.command(epilog=FLEET_EXIT_CODES)
@setting_options(FleetSettings)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages (each app's decision).")
def fleet(verbose: bool, **options: Any) -> None:
    """Check every app's branch head at once; create a Job from an app's CronJob only where
    there is work (as `kubectl create job --from=cronjob/APP` would).

    The apps are the CronJobs FLEET_SELECTOR picks in CICD_NS; each one's settings come from
    its pod template. Prints one line per Job created and a summary line.
    """
    # Not at the top: an idle `run` never needs the fleet's thread pool and modules.
    from .run import fleet as fleet_run

    settings = _load(FleetSettings, options, [])
    logs.setup(settings.log_format, [], verbose)
    for variable, setting in misspelt(FleetSettings, os.environ):
        log.warning("%s is no setting and is ignored: did you mean %s?", variable, setting)
    try:
        outcome = fleet_run.run(settings)
    except CiRunnerError as e:
        _fail(e, [], as_json=settings.log_format == "json")
    for line in [*outcome.lines, outcome.summary]:
        # JSON logs: a log pipeline reads every line of the pod as one object, stdout too.
        as_json = {"level": "info", "message": line}
        click.echo(json.dumps(as_json) if settings.log_format == "json" else line)


_SHA = re.compile(r"^[0-9a-f]{40}$")


@main.command("fetch-context", hidden=True)
@click.option("--sha", required=True, help="The commit whose build context to fetch.")
@click.option(
    "--into",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The directory to unpack BUILD_CONTEXT into (emptied first).",
)
@click.option(
    "--message-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the one-line error goes too (the build pod: /dev/termination-log).",
)
def fetch_context(sha: str, into: Path, message_file: Path | None) -> None:
    """Internal: the build pod's init container. Download the commit's tarball from GitHub
    and unpack BUILD_CONTEXT for Kaniko's dir:// context, so that Kaniko never holds the
    GitHub token. Reads REPO, GITHUB_API_URL, GIT_TOKEN, BUILD_CONTEXT, API_TIMEOUT,
    TARBALL_TIMEOUT, VERIFY_SSL and LOG_FORMAT from the environment.

    Exit codes: 1 the commit's archive is refused (bad, hostile, too big, no BUILD_CONTEXT);
    2 the settings are wrong; 3 GitHub failed (unreachable, refused, too slow).
    """
    # Not at the top: the idle run never needs this step.
    from .run import fetch

    masked = given_secrets({}, os.environ)
    as_json = os.environ.get("LOG_FORMAT", "").strip().lower() == "json"
    try:
        if not _SHA.match(sha):
            raise ConfigError([f"--sha must be a full commit SHA (40 hex digits), got {sha!r}"])
        settings = load_fetch(os.environ)
        logs.setup(settings.log_format, masked)
        log.info("%s", fetch.fetch_context(settings, sha, into))
    except CiRunnerError as e:
        if message_file is not None:
            # The kubelet keeps this file's text as the container's termination message: the
            # runner's build watch reads it with the exit code (as with Kaniko's digest).
            try:
                message_file.write_text(logs.mask(str(e), masked))
            except OSError as written:
                log.warning("could not write %s: %s", message_file, written)
        _fail(e, masked, as_json=as_json)
