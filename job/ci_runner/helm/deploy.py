"""The deploy: ``helm upgrade --install`` through pyhelm3, rolled back by helm on failure."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pyhelm3
import pyhelm3.command
import pyhelm3.errors
import semver  # pyhelm3 depends on it; its Client compares versions with it

from .. import stopping
from ..config import Settings
from ..errors import (
    BadCommit,
    ConfigError,
    DeployError,
    KubernetesError,
    ReleaseBusy,
    ServiceError,
    shorten,
)
from .values import image_values, merge

log = logging.getLogger(__name__)

# After SIGTERM, helm gets this long to cancel (and roll back) before it is killed: a pod has
# 30 s in all, and the runner still releases its Lease after helm is gone.
HELM_GRACE_SECONDS = 18
RECOVERY_MARGIN_SECONDS = 120
"""A pending-* release this runner cannot tie to a dead helm of its own is recovered only once
it is older than HELM_TIMEOUT plus this: until then a person's `helm upgrade` (or another
tool's) may still be at work on it, and rolling it back would race that helm."""
ORPHAN_WINDOW_SECONDS = 60
"""A pending revision written this soon after a dead run's helm started is that helm's."""
HELM_VERSION_SECONDS = 60
"""How long ``helm version`` (local, no cluster) may take before the run gives up on helm."""
PR_SET_PDEATHSIG = 1
"""From Linux's <linux/prctl.h>: the signal a process gets when the thread that forked it ends."""


def _truly_stuck(since: datetime, orphaned_helm: datetime | None, helm_timeout: int) -> bool:
    """Whether a revision pending ``since`` may be recovered now: a dead run's helm wrote it
    (it began within ORPHAN_WINDOW_SECONDS after that helm started), or it is older than any
    helm of HELM_TIMEOUT would wait, plus RECOVERY_MARGIN_SECONDS."""
    if orphaned_helm is not None:
        # Not before it (the mark is written before that helm starts; 2 s for timestamps'
        # rounding): a revision pending since earlier is someone else's helm.
        began = (since - orphaned_helm).total_seconds()
        if -2 <= began <= ORPHAN_WINDOW_SECONDS:
            return True
    age = (datetime.now(UTC) - since).total_seconds()
    return age > helm_timeout + RECOVERY_MARGIN_SECONDS


_CONFLICT = "Apply failed with"
"""How the API server's server-side apply conflict starts ("Apply failed with 1 conflict:
conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"), as helm 4
passes it on."""
_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
_IMPERSONATE = "cannot impersonate"
"""How the API server refuses an impersonation (``User "..." cannot impersonate resource
"serviceaccounts" in API group "" in the namespace "web"``: responsewriters.Forbidden)."""


def _dies_with_runner() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the helm child get SIGKILL when the runner dies, however it
    dies (SIGKILL, OOM kill, a node drain past the grace period): helm runs in a session of its
    own, so nothing else would stop it, and an orphaned helm races the next run ("another
    operation is in progress", a pending release it then rolls back under the live helm).

    ``prctl(PR_SET_PDEATHSIG)`` fires when the *thread* that forked the child ends, so helm must
    be forked by a thread that lives as long as the run: asyncio's ``create_subprocess_exec``
    calls ``subprocess.Popen`` in the event loop's own thread, which ``asyncio.run`` runs in the
    main thread (CPython 3.11 asyncio/base_subprocess.py ``_start``). The libc function is
    resolved here, before the fork, so that the child only makes one system call before exec
    (``preexec_fn`` runs between fork and exec, where little else is safe with other threads,
    such as the Lease's renewal, alive). None off Linux, which has no such call."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    runner = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != runner:  # the runner died between fork and prctl: no one to wait
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


class _ExecNotShell:
    """What ``pyhelm3.command`` sees as ``asyncio``: the same, except that its "shell" command
    is exec'd directly, in a session of its own.

    pyhelm3 0.5.8 starts helm with ``create_subprocess_shell``; Debian's dash does not exec the
    last command, so pyhelm3's terminate() on cancellation reached the shell and left helm
    running. Exec'd, helm itself gets the SIGTERM and cancels (and rolls back) cleanly. The
    command line is pyhelm3's own ``shlex.join``, so ``shlex.split`` gives back its argv.
    """

    running: ClassVar[set[asyncio.subprocess.Process]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @classmethod
    async def create_subprocess_shell(cls, cmd: str, **kwargs: Any) -> asyncio.subprocess.Process:
        stopping.check()  # no new helm (a status, a rollback) once a stop was asked for
        process = await asyncio.create_subprocess_exec(
            *shlex.split(cmd), start_new_session=True, preexec_fn=_dies_with_runner(), **kwargs
        )
        cls.running.add(process)
        return process


@contextlib.contextmanager
def helm_running() -> Iterator[None]:
    """While pyhelm3 runs helm here, and only then: its commands are exec'd (``_ExecNotShell``
    is what ``pyhelm3.command`` sees as ``asyncio``), and a SIGTERM reaches them (``stop_helm``
    is what the stop registry cancels)."""
    saved = pyhelm3.command.asyncio
    pyhelm3.command.asyncio = _ExecNotShell()
    try:
        with stopping.cancelling(stop_helm):
            yield
    finally:
        pyhelm3.command.asyncio = saved


def stop_helm() -> None:
    """Called on SIGTERM: each running helm gets it now, and HELM_GRACE_SECONDS to cancel and
    roll back by itself, then SIGKILL. A killed helm leaves the release pending-*, which the
    next run rolls back.

    helm would get the signal anyway when the run's SystemExit cancels pyhelm3's task (pyhelm3
    terminate()s it), but that exception can be lost (stopping.py). A second SIGTERM does no
    harm: helm's install and upgrade commands read one from a signal.Notify channel and cancel
    their context (helm cmd/helm/install.go, upgrade.go)."""

    def kill() -> None:
        for process in list(_ExecNotShell.running):
            if process.returncode is None:
                log.warning("helm (pid %s) did not stop in time; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)

    running = [process for process in _ExecNotShell.running if process.returncode is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    # Only for a helm still running: the timer's thread keeps the process alive until it fires.
    if running:
        threading.Timer(HELM_GRACE_SECONDS, kill).start()


def kill_helm() -> None:
    """SIGKILL every helm this run started (called when the run lost its Lease: another run may
    take the release over, and this run must write nothing more). Must not block."""
    for process in list(_ExecNotShell.running):
        if process.returncode is None:
            log.error("killing helm (pid %s): this run lost its Lease", process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def require_helm() -> str:
    """The helm executable on PATH, or ConfigError."""
    found = shutil.which("helm")
    if not found:
        raise ConfigError(["helm is not on PATH (the runner's image ships it)"])
    return found


def helm_problem(version: str) -> str | None:
    """What is wrong with a helm version's text (``v4.1.4``); None for 3.18+ and 4.x."""
    found = _VERSION.search(version)
    if found is None:
        return f"cannot tell helm's version from {shorten(version, 80)!r}"
    major, minor, _ = (int(n) for n in found.groups())
    if major == 4 or (major == 3 and minor >= 18):
        return None
    return f"helm {found.group(0)} is not supported: install 4.x or 3.18+ (the newest 3.x patch)"


@dataclass(frozen=True)
class Helm:
    """The helm a run deploys with, found and asked its version before the run writes
    anything (Lease, build Job, state): a run without a usable helm stops there, exit 2."""

    executable: str
    version: str
    """As ``helm version --template '{{ .Version }}'`` prints it: ``v4.1.4``."""

    @property
    def major(self) -> int:
        found = _VERSION.search(self.version)
        assert found is not None  # find() checked it
        return int(found.group(1))

    @classmethod
    def find(cls) -> Helm:
        """helm on PATH, runnable and of a supported version; ConfigError otherwise."""
        executable = require_helm()
        # The same question pyhelm3's Client asks in its constructor (Command.client_version).
        try:
            answer = subprocess.run(
                [executable, "version", "--template", "{{ .Version }}"],
                capture_output=True,
                text=True,
                timeout=HELM_VERSION_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ConfigError([f"helm at {executable} cannot be run: {e}"]) from e
        if answer.returncode != 0:
            said = shorten(answer.stderr or answer.stdout, 200)
            raise ConfigError([f"`{executable} version` failed (exit {answer.returncode}): {said}"])
        problem = helm_problem(answer.stdout.strip())
        if problem is not None:
            raise ConfigError([f"{problem} (at {executable})"])
        return cls(executable, answer.stdout.strip())


class _Command(pyhelm3.Command):  # type: ignore[misc]
    """pyhelm3's Command with ``--kube-as-user`` on every helm command it runs: pyhelm3 0.5.8
    has no such option (command.py ``Command.run`` adds only the kubeconfig, context, API
    server, token and TLS flags), and helm 3.18 and 4.1 both take it as a global flag.

    Only the user, no ``--kube-as-group``: for a ServiceAccount named without groups the API
    server fills in its groups itself (system:serviceaccounts, system:serviceaccounts:<ns>,
    system:authenticated), and asks only for ``impersonate`` on that one ServiceAccount;
    naming groups would also need ``impersonate`` on ``groups``, a cluster-wide grant, and the
    constrained impersonation of Kubernetes 1.36+ refuses groups with a ServiceAccount
    (k8s.io/apiserver v0.37.2 pkg/endpoints/filters/impersonation/mode.go ``authorizeUsername``,
    impersonation.go ``WithImpersonation``)."""

    def __init__(self, *, kube_as_user: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kube_as_user = kube_as_user

    async def run(self, command: list[str], input: bytes | None = None) -> bytes:
        if self._kube_as_user:
            command = [*command, "--kube-as-user", self._kube_as_user]
        answer: bytes = await super().run(command, input)
        return answer


class _AskedClient(pyhelm3.Client):  # type: ignore[misc]
    """pyhelm3's Client, for the version ``Helm.find`` asked already: its constructor would run
    ``helm version`` again (pyhelm3 0.5.8 client.py ``Client.__init__`` sets only ``_command``
    and ``version``, the latter from ``Command.client_version``)."""

    def __init__(self, command: pyhelm3.Command, version: str) -> None:
        self._command = command
        self.version = semver.Version.parse(version.removeprefix("v"))


def helm_command(
    helm: Helm, verify_ssl: bool | None, timeout: int, kube_as_user: str | None
) -> pyhelm3.Command:
    """The pyhelm3 Command every helm call of the runner goes through (deploys and reads),
    acting as ``kube_as_user`` (the app's deployer) when given."""
    return _Command(
        kube_as_user=kube_as_user,
        executable=helm.executable,
        # unset: helm reads the kubeconfig's insecure-skip-tls-verify itself
        insecure_skip_tls_verify=verify_ssl is False,
        default_timeout=f"{timeout}s",
    )


@dataclass(frozen=True)
class Installed:
    """A release as helm reports it now (``helm status``)."""

    revision: int
    status: str
    """deployed, failed, pending-upgrade, ..."""
    values: dict[str, Any]
    """The values the current revision was given (``config`` in ``helm status -o json``)."""


def installed(
    release: str, namespace: str, verify_ssl: bool | None, timeout: int, kube_as_user: str | None
) -> Installed | None:
    """``helm status`` of ``release`` in ``namespace``; None when it is not installed.
    ConfigError without a usable helm; KubernetesError when helm cannot ask the API."""
    helm = Helm.find()
    command = helm_command(helm, verify_ssl, timeout, kube_as_user)
    try:
        with helm_running():
            answer = asyncio.run(command.status(release, namespace=namespace))
    except pyhelm3.errors.ReleaseNotFoundError:
        return None
    except pyhelm3.errors.Error as e:
        raise KubernetesError(f"helm status of {namespace}/{release} failed: {_stderr(e)}") from e
    info = answer.get("info") or {}
    config = answer.get("config")
    return Installed(
        int(answer.get("version") or 0),
        str(info.get("status") or "unknown"),
        config if isinstance(config, dict) else {},
    )


def command_line(settings: Settings, chart: str, helm4: bool) -> str:
    """The helm command a deploy runs, for --dry-run (the values go in on stdin)."""
    s = settings
    rollback = "--rollback-on-failure" if helm4 else "--atomic"
    words = [
        "helm",
        "upgrade",
        s.release,
        chart,
        "--install",
        "--namespace",
        s.deploy_namespace,
        rollback,
        "--wait",
        "--wait-for-jobs",
        "--timeout",
        f"{s.helm_timeout}s",
        "--values",
        "-",
    ]
    if helm4 and s.helm_force_conflicts:
        words.insert(-2, "--force-conflicts")
    if s.deployer_user:
        words.insert(-2, "--kube-as-user")
        words.insert(-2, s.deployer_user)
    return shlex.join(words)


def helm_major(executable: str) -> int:
    """The major version of the helm binary."""
    with helm_running():
        client = pyhelm3.Client(executable=executable)
        return int(client.version.major)


_STUCK = {
    pyhelm3.ReleaseRevisionStatus.PENDING_INSTALL,
    pyhelm3.ReleaseRevisionStatus.PENDING_UPGRADE,
    pyhelm3.ReleaseRevisionStatus.PENDING_ROLLBACK,
    pyhelm3.ReleaseRevisionStatus.UNINSTALLING,
}
"""What a stopped helm leaves: ``get_proceedable_revision`` rolls back or uninstalls these."""


@dataclass(frozen=True)
class Deploy:
    """One ``helm upgrade --install`` of an extracted chart with its values."""

    settings: Settings
    chart_dir: Path
    values: dict[str, Any]
    """From ``chart_values``: what helm gets on stdin."""
    helm: Helm | None = None
    """The helm the run checked before its first write; None: found when the deploy runs."""

    def pinned(self, sha: str, digest: str | None) -> Deploy:
        """The same deploy with the image values of ``sha`` pushed as ``digest``."""
        values = merge(self.values, image_values(self.settings, sha, digest))
        return replace(self, values=values)

    def render(self, where: str, kube_version: str | None) -> None:
        """``helm template`` of the chart with these values (the deploy's own, but for a digest
        not pushed yet): BadCommit when helm cannot render it, so a chart's template error
        costs no build. Offline (no request to the cluster: ``lookup`` renders empty there);
        ``--kube-version`` is the API server's, so a chart's ``kubeVersion`` constraint is
        judged as the deploy will judge it (helm template otherwise assumes its own client's
        version: ``--kube-version`` in ``helm template --help``)."""
        s = self.settings
        helm = self.helm or Helm.find()
        words = [helm.executable, "template", s.release, str(self.chart_dir)]
        words += ["--namespace", s.deploy_namespace, "--values", "-"]
        if kube_version:
            words += ["--kube-version", kube_version]
        stopping.check()
        try:
            done = subprocess.run(
                words,
                input=json.dumps(self.values),
                capture_output=True,
                text=True,
                timeout=s.helm_timeout,
                check=False,
                start_new_session=True,
                preexec_fn=_dies_with_runner(),
            )
        except subprocess.TimeoutExpired as e:
            raise ServiceError(f"helm template took longer than {s.helm_timeout}s") from e
        except OSError as e:
            raise ConfigError([f"helm at {helm.executable} cannot be run: {e}"]) from e
        if done.returncode != 0:
            said = shorten((done.stderr or done.stdout).replace("Error: ", "", 1), 400)
            raise BadCommit(f"helm cannot render the chart {s.chart_path} of {where}: {said}")

    def run(self, orphaned_helm: datetime | None = None) -> int:
        """Install or upgrade the release; its new revision number. ``orphaned_helm``: when a
        helm started by an earlier run (gone now) began, if that run did not see it finish."""
        try:
            with helm_running():
                return asyncio.run(self._run(orphaned_helm))
        except pyhelm3.errors.Error as e:
            release = self.settings.release
            said = _stderr(e)
            if isinstance(e, pyhelm3.errors.ConnectionError) or _unreachable(e):
                # Nothing about the commit failed: exit 3, no attempt counted, no failure
                # status. helm rolled back if it could; a release left pending-* is recovered by
                # the next run (its helm is gone with this run: _dies_with_runner).
                raise KubernetesError(f"helm lost the Kubernetes API: {said}") from e
            if _IMPERSONATE in said and "template" not in said:
                # The runner's setup, not the commit: exit 2, no attempt counted. (Refused, the
                # very first request fails, before any template is rendered: a chart's own
                # `fail` with these words is still the commit's failure.)
                raise ConfigError(
                    [
                        f"helm may not act as DEPLOYER {self.settings.deployer_user}: {said} "
                        "(grant the runner impersonate on that ServiceAccount, as the chart's "
                        "<release>-<app>-impersonate Role does, or unset DEPLOYER)"
                    ]
                ) from e
            if _CONFLICT in said and not self.settings.helm_force_conflicts:
                said += (
                    " (another field manager owns a field the chart sets: stop setting it in the"
                    " chart, or HELM_FORCE_CONFLICTS=true to take it over on every deploy)"
                )
            raise DeployError(f"helm upgrade of {release} failed: {said}") from e

    async def _run(self, orphaned_helm: datetime | None) -> int:
        s = self.settings
        helm = self.helm or Helm.find()
        command = helm_command(helm, s.verify_ssl, s.helm_timeout, s.deployer_user)
        helm4 = helm.major >= 4  # picks the rollback flag
        try:
            return await self._upgrade(command, helm4)
        except pyhelm3.errors.Error:
            # A helm killed mid-upgrade (a crashed run) leaves the release pending-*, and
            # helm refuses to upgrade it ("another operation is in progress") before it
            # changes anything (prepareUpgrade in helm's pkg/action/upgrade.go, 3.18 and 4.1).
            # So the release's status is asked only after a failure, not before every deploy.
            if not await self._recovered(_AskedClient(command, helm.version), orphaned_helm):
                raise
        return await self._upgrade(command, helm4)

    async def _upgrade(self, command: pyhelm3.Command, helm4: bool) -> int:
        """``helm upgrade --install``; the new revision. pyhelm3's Command rather than
        ``Client.install_or_upgrade_release``, whose Chart costs a ``helm show chart`` for a
        ``--version`` that helm ignores for a chart directory (``LocateChart``)."""
        s = self.settings
        release = await command.install_or_upgrade(
            s.release,
            self.chart_dir,
            self.values,
            atomic=True,
            atomic_arg="--rollback-on-failure" if helm4 else "--atomic",  # renamed in helm 4
            create_namespace=False,  # the cycle creates a missing one (Kube.ensure_namespace)
            # helm 4 applies server-side (HIP-0023): a field another manager owns (`kubectl
            # scale`'s or an HPA's replicas) is a conflict unless forced. helm 3 merges
            # client-side and has no such flag.
            force_conflicts=helm4 and s.helm_force_conflicts,
            namespace=s.deploy_namespace,
            timeout=f"{s.helm_timeout}s",
            wait=True,
        )
        log.debug("helm revision %s is %s", release["version"], release["info"]["status"])
        return int(release["version"])

    async def _recovered(self, client: pyhelm3.Client, orphaned_helm: datetime | None) -> bool:
        """Roll back a release left pending-* (uninstall a pending install) as pyhelm3's
        ``get_proceedable_revision`` does; False when the release is not stuck. Only what is
        truly stuck: a pending revision a dead run's helm wrote, or one older than HELM_TIMEOUT
        plus a margin; any other may belong to a helm still at work (ReleaseBusy)."""
        s = self.settings
        try:
            current = await client.get_current_revision(s.release, namespace=s.deploy_namespace)
        except pyhelm3.errors.Error:
            return False  # not installed, or helm cannot tell: the upgrade's own error stands
        if current.status not in _STUCK:
            return False
        status = current.status.value
        since: datetime = current.updated  # helm's info.last_deployed: when that helm began
        if not _truly_stuck(since, orphaned_helm, s.helm_timeout):
            until = since + timedelta(seconds=s.helm_timeout + RECOVERY_MARGIN_SECONDS)
            raise ReleaseBusy(
                f"release {s.release} is {status} since {since.isoformat(timespec='seconds')} "
                "by a helm this runner did not start (a person's, or another tool's), which may "
                f"still be running: left alone; a run after {until.isoformat(timespec='seconds')}"
                " recovers it if it is still pending then"
            )
        log.warning("release %s was left %s; recovering it", s.release, status)
        await client.get_proceedable_revision(
            s.release, namespace=s.deploy_namespace, timeout=f"{s.helm_timeout}s"
        )
        return True


_OUTAGE = (
    "connection refused",
    "kubernetes cluster unreachable",
    "no such host",
    "no route to host",
    "i/o timeout",
    "connection reset by peer",
    "tls handshake timeout",
    "http2: client connection lost",
    "unexpected eof",
    "the server is currently unable to handle the request",
    "the server was unable to return a response in the time allotted",
    "has prevented the request from succeeding",
)
"""What helm prints when the API server did not answer, or answered 500/503/504: Go's net
errors and client-go's texts for those statuses (k8s.io/apimachinery pkg/api/errors
``NewGenericServerResponse``). pyhelm3 0.5.8 itself calls only "etcdserver" texts a
ConnectionError (command.py ``Command.run``). Not "context deadline exceeded": that is also how
helm says the release did not get ready within --timeout, the commit's own failure."""


def _unreachable(e: pyhelm3.errors.Error) -> bool:
    text = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else str(e)
    lowered = text.lower()
    return any(sign in lowered for sign in _OUTAGE)


def _stderr(e: pyhelm3.errors.Error) -> str:
    text = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else str(e)
    return shorten(text.replace("Error: ", "", 1), 400)
