"""The image build: one Kaniko batch/v1 Job per commit attempt, watched to its end."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import re

from .. import logs
from ..config import Settings
from ..errors import ConfigError, Conflict, KubernetesError
from .build_watch import BuildResult, Watcher, finished, job_pods
from .client import JOBS, MANAGED_BY, RELEASE_LABEL, SECRETS, Kube, Obj
from .token_secret import TOKEN_KEY

log = logging.getLogger(__name__)

COMMIT_LABEL = "ci-runner.io/commit"
# Finished build Jobs stay a day for their logs, then Kubernetes removes them.
TTL_SECONDS = 86_400
TERMINATION_LOG = "/dev/termination-log"
# What Kaniko writes to --digest-file: the pushed image's digest (pkg/executor/push.go).
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


# Characters of the release's hash that stand for the part of a long release name cut off.
_NAME_HASH = 8


def job_name(release: str, sha: str, attempt: int, nonce: str = "") -> str:
    """A name per (release, commit, attempt): a crashed run's Job is found again by name.

    A ``nonce`` (a per-run string) makes the name new, so a forced build or a retry whose
    earlier Job failed builds anew instead of adopting that finished Job. A release too long to
    fit is cut and followed by a hash of the whole name: two releases that share their first
    40-odd characters still get Jobs of their own (a short one keeps the name it always had).
    """
    suffix = f"-build-{sha[:12]}-{attempt}" + (f"-{nonce}" if nonce else "")
    room = 63 - len(suffix)
    if len(release) <= room:
        return release + suffix
    digest = hashlib.sha256(release.encode()).hexdigest()[:_NAME_HASH]
    return f"{release[: room - _NAME_HASH - 1].rstrip('-')}-{digest}{suffix}"


def foreign_job(job: Obj, release: str, sha: str) -> str | None:
    """Why ``job`` (found under the name of our build) is not this release's build of ``sha``,
    or None when its labels say it is. Only such a Job may be adopted: one of another app or
    commit would deploy an image built from something else."""
    labels = (job.get("metadata") or {}).get("labels") or {}
    theirs = (labels.get(RELEASE_LABEL), labels.get(COMMIT_LABEL))
    if theirs == (release, sha):
        return None
    return f"its labels say release {theirs[0]!r}, commit {theirs[1]!r}"


# Where the init container unpacks the build context and Kaniko reads it: Kaniko's own default
# context directory, as its README's examples mount a volume there ("--context=dir://workspace").
WORKSPACE = "/workspace"
FETCH_CONTAINER = "fetch-context"
CONTEXT_VOLUME = "context"
# Room for a context of archive.MAX_CONTEXT_BYTES (1 GiB, as its tar headers declare) and the
# tarball of github.client.MAX_TARBALL_BYTES (200 MiB) it is unpacked from.
CONTEXT_SIZE = "2Gi"
FETCH_TMP_SIZE = "256Mi"
# The runner's own measured peak is near 50 MiB while it downloads and unpacks a tarball.
FETCH_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
# As the runner's own container (the chart's runner.securityContext): the restricted profile.
# UID 10001 is the image's user; the emptyDir it writes to is world-writable (0777), and Kaniko,
# root, reads what it wrote.
FETCH_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def kaniko_args(settings: Settings, sha: str) -> list[str]:
    """Kaniko's arguments: build the context the init container unpacked, push ``<sha>`` and
    ``<branch>-latest``, write the pushed digest where the runner reads it; then the user's
    build arguments and flags.

    Flags as the maintained fork documents them (osscontainertools/kaniko README, "Additional
    Flags"; cmd/executor/cmd/root.go). Each is one ``--name=value`` word: no shell is involved,
    so a value with spaces needs no quoting. ``dir://`` is the local-directory context
    (pkg/buildcontext/buildcontext.go maps it to a Dir, used as it is); the init container
    unpacked only BUILD_CONTEXT there, so no ``--context-sub-path`` is needed and DOCKERFILE
    stays relative to BUILD_CONTEXT, as it was with the git context and its sub-path.
    """
    s = settings
    args = [
        f"--context=dir://{WORKSPACE}",
        f"--dockerfile={s.dockerfile}",
        f"--destination={s.image}:{sha}",
        f"--destination={s.image}:{s.latest_tag}",
        # The digest lands in the pod's termination message, visible in its status.
        f"--digest-file={TERMINATION_LOG}",
        "--push-retry=2",
    ]
    build_args = (("CI_RUNNER_SHA", sha), ("CI_RUNNER_BRANCH", s.branch), *s.build_args)
    args += [f"--build-arg={key}={value}" for key, value in build_args]
    if s.build_cache:
        # --cache-ttl is a Go duration (pflag DurationVar); the fork's default is two weeks.
        repo = s.cache_repository(s.image)
        args += ["--cache=true", f"--cache-repo={repo}", f"--cache-ttl={s.build_cache_ttl}"]
    if s.registry_insecure:
        # --insecure: push over plain HTTP; --skip-tls-verify: push without checking TLS.
        args += ["--insecure", "--skip-tls-verify"]
    # Last, so that a user's flag wins over a default of ours (pflag keeps the last value);
    # the flags the runner depends on are refused when the settings are loaded.
    return [*args, *s.kaniko_args]


def fetch_container(settings: Settings, sha: str) -> Obj:
    """The init container: the runner's own image runs ``ci-runner fetch-context``, which
    downloads the commit's tarball and unpacks BUILD_CONTEXT into the shared volume. It alone
    gets the GitHub token, as a Secret reference; its exit code (1: the commit's archive, 3:
    GitHub) and one-line message are what the build watch reads when it fails."""
    s = settings
    plain = {
        "REPO": s.repo,
        "GITHUB_API_URL": s.github_api_url,
        "BUILD_CONTEXT": s.build_context,
        "API_TIMEOUT": str(s.api_timeout),
        "TARBALL_TIMEOUT": str(s.tarball_timeout),
        "LOG_FORMAT": s.log_format,
    }
    if s.verify_ssl is not None:
        plain["VERIFY_SSL"] = str(s.verify_ssl).lower()
    env: list[Obj] = [{"name": name, "value": value} for name, value in plain.items()]
    if s.token_secret_name:
        secret = {"secretKeyRef": {"name": s.token_secret_name, "key": TOKEN_KEY}}
        env.append({"name": "GIT_TOKEN", "valueFrom": secret})
    return {
        "name": FETCH_CONTAINER,
        "image": s.runner_image,
        # Arguments only: the image's ENTRYPOINT is the ci-runner console script (Dockerfile).
        "args": [
            "fetch-context",
            f"--sha={sha}",
            f"--into={WORKSPACE}",
            f"--message-file={TERMINATION_LOG}",
        ],
        "env": env,
        "resources": copy.deepcopy(FETCH_RESOURCES),
        "securityContext": copy.deepcopy(FETCH_SECURITY),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": CONTEXT_VOLUME, "mountPath": WORKSPACE},
            # The tarball waits on TMPDIR; the root filesystem is read-only.
            {"name": "fetch-tmp", "mountPath": "/tmp"},
        ],
    }


def pod_spec(settings: Settings, sha: str) -> Obj:
    """The build pod: the init container fetches the context, then Kaniko builds and pushes.
    The GitHub token reaches only the init container (a Secret reference); the registry
    credentials are mounted only into Kaniko, which pushes with them. BUILD_POD's fields
    (resources for the Kaniko container, scheduling and identity for the pod) replace ours."""
    s = settings
    chosen = copy.deepcopy(dict(s.build_pod or {}))
    container: Obj = {
        "name": "kaniko",
        "image": s.kaniko_image,
        "args": kaniko_args(s, sha),
        "resources": chosen.pop("resources", None)
        or {"requests": {"cpu": "500m", "memory": "1Gi"}},
        # On success the message is the digest Kaniko wrote; on a failure that wrote nothing
        # there, the kubelet puts the log's tail there instead.
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": CONTEXT_VOLUME, "mountPath": WORKSPACE}],
    }
    volumes: list[Obj] = [
        {"name": CONTEXT_VOLUME, "emptyDir": {"sizeLimit": CONTEXT_SIZE}},
        {"name": "fetch-tmp", "emptyDir": {"sizeLimit": FETCH_TMP_SIZE}},
    ]
    spec: Obj = {
        "restartPolicy": "Never",
        # Neither container needs Kubernetes API access.
        "automountServiceAccountToken": False,
        "initContainers": [fetch_container(s, sha)],
        "containers": [container],
        "volumes": volumes,
        **chosen,
    }
    if s.registry_secret:
        items = [{"key": ".dockerconfigjson", "path": "config.json"}]
        volumes.append(
            {"name": "registry-auth", "secret": {"secretName": s.registry_secret, "items": items}}
        )
        container["volumeMounts"].append({"name": "registry-auth", "mountPath": "/kaniko/.docker"})
    return spec


def build_job(settings: Settings, sha: str, attempt: int, nonce: str = "") -> Obj:
    """The build Job manifest: one pod, never retried, removed a day after it ends."""
    s = settings
    labels = {
        **MANAGED_BY,
        "app.kubernetes.io/component": "build",
        RELEASE_LABEL: s.release,
        COMMIT_LABEL: sha,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(s.release, sha, attempt, nonce),
            "namespace": s.cicd_namespace,
            "labels": labels,
            "annotations": {"ci-runner.io/branch": s.branch, "ci-runner.io/attempt": str(attempt)},
        },
        "spec": {
            "backoffLimit": 0,
            # A pod evicted or preempted (a node drain, a higher-priority pod) is the cluster's
            # doing, not the build's: the Job makes a new pod instead of failing (the Job
            # controller adds the DisruptionTarget condition to such pods; needs restartPolicy
            # Never, which the pod has).
            "podFailurePolicy": {
                "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
            },
            "activeDeadlineSeconds": s.build_timeout,
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(s, sha)},
        },
    }


def pushed_digest(pod: Obj) -> str | None:
    """The digest Kaniko pushed, from the build pod's termination message (``--digest-file``
    is the termination log); None unless the Kaniko container ended well and left one."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        if status.get("name") == "kaniko" and terminated.get("exitCode") == 0:
            message = str(terminated.get("message") or "").strip()
            return message if _DIGEST.match(message) else None
    return None


class Builder:
    """Creates (or adopts) the build Job of a commit and waits for its end."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self._ns = settings.cicd_namespace

    def start(self, sha: str, attempt: int, nonce: str, fresh: bool) -> str:
        """Create the Job for this attempt, or adopt the one a crashed run left; its name.

        A Job of the same name is adopted while it runs or when it succeeded, if its labels
        name this release and commit (else ConfigError naming it); one that failed was counted
        already, so a retry builds anew under a ``nonce`` name. ``fresh`` (a forced run) always
        builds anew.
        """
        s = self._settings
        body = build_job(s, sha, attempt, nonce if fresh else "")
        name: str = body["metadata"]["name"]
        try:
            self._kube.create(JOBS, body)
        except Conflict:
            existing = self._kube.read(JOBS, self._ns, name)
            why = foreign_job(existing, s.release, sha) if existing is not None else None
            if why is not None:
                raise ConfigError(
                    [
                        f"Job {self._ns}/{name} has the name of the build of {s.release} "
                        f"at {sha[:7]} but is not it ({why}): not adopted; delete or rename it"
                    ]
                ) from None
            verdict = finished(existing) if existing is not None else None
            if fresh or verdict is None or verdict.succeeded:
                log.info("adopting build Job %s/%s left by an earlier run", self._ns, name)
                return name
            return self.start(sha, attempt, nonce, fresh=True)
        except KubernetesError as e:
            # Created with fieldValidation=Strict: a field the API server does not know can
            # only come from BUILD_POD (the rest of the manifest is ours), a configuration error.
            if e.status == 400 and "unknown field" in str(e):
                raise ConfigError([f"BUILD_POD: the API server refused the build Job: {e}"]) from e
            raise
        log.info("started build Job %s/%s for %s", self._ns, name, sha[:7])
        return name

    def pushed_digest(self, job: str, sha: str) -> str | None:
        """The digest the build pod's termination message reports (Kaniko's --digest-file);
        None, with a warning, when the pod is gone or says none: then the tag is deployed."""
        s = self._settings
        try:
            pods = job_pods(self._kube, self._ns, job)
        except KubernetesError as e:
            log.warning("could not read the build pod of %s: %s", job, e)
            pods = []
        digests = [d for d in map(pushed_digest, pods) if d]
        if not digests:
            log.warning(
                "build Job %s succeeded but no pod of it reports the pushed digest; "
                "deploying %s:%s by its tag",
                job,
                s.image,
                sha,
            )
            return None
        return digests[-1]

    def wait(self, name: str) -> BuildResult:
        """Wait for the Job's verdict (see build_watch). A build the runner gives up on (its pod
        never started, or no verdict in time) is deleted with its pod, so that it stops using
        the cluster and the next run starts clean."""
        result = Watcher(self._kube, self._settings, name).wait()
        if result.abandoned:
            try:
                self._kube.delete(JOBS, self._ns, name)
                log.info("deleted the abandoned build Job %s/%s", self._ns, name)
            except KubernetesError as e:  # its activeDeadlineSeconds still ends it
                log.warning("could not delete the abandoned build Job %s: %s", name, e)
        return result


def _decoded(value: object) -> str:
    """A Secret's data value as text ('' when it is not base64 of UTF-8)."""
    try:
        return base64.b64decode(str(value), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def secret_credentials(key: str, value: object) -> list[tuple[str, str]]:
    """The credentials in a Secret's ``key`` (base64 ``value``), each with what it is for:
    the token of a token Secret; from a docker config, each registry's password, identity and
    registry tokens, and its ``auth`` (base64 of ``user:password``) whole. A malformed docker
    config yields none (Kaniko then says what is wrong with it)."""
    text = _decoded(value)
    if key == TOKEN_KEY:
        return [("the token", text.strip())] if text.strip() else []
    try:
        auths = json.loads(text).get("auths") or {}
    except (ValueError, AttributeError):
        return []
    found = []
    for registry, entry in auths.items() if isinstance(auths, dict) else ():
        if not isinstance(entry, dict):
            continue
        for field in ("password", "identitytoken", "registrytoken", "auth"):
            if isinstance(entry.get(field), str) and entry[field]:
                found.append((f"{field} for {registry}", entry[field]))
    return found


def check_secrets(kube: Kube, settings: Settings) -> None:
    """The Secrets a build Job will reference exist with their keys: ConfigError naming each
    missing one, before anything is created (else the pod would wait forever for them).

    Their credentials are masked from now on in everything the runner writes, since a build's
    log (which goes to lastError, an Event, the commit status and NOTIFY_URL) may print them;
    one too short to be masked reliably is refused like a missing key."""
    s = settings
    wanted = []
    if s.registry_secret:
        wanted.append(("REGISTRY_SECRET", s.registry_secret, ".dockerconfigjson"))
    if s.git_token_secret:
        wanted.append(("GIT_TOKEN_SECRET", s.git_token_secret, TOKEN_KEY))
    problems = []
    for setting, name, key in wanted:
        secret = kube.read(SECRETS, s.cicd_namespace, name)
        where = f"{setting} Secret {name!r} in namespace {s.cicd_namespace!r}"
        data = (secret or {}).get("data") or {}
        if secret is None:
            problems.append(f"{where} does not exist")
        elif key not in data:
            problems.append(f"{where} has no key {key!r}")
        found = secret_credentials(key, data.get(key))
        for what, credential in list(found):
            # An auth field is base64 of user:password: its password is a credential too.
            if what.startswith("auth ") and ":" in (plain := _decoded(credential)):
                found.append((f"the password in the {what}", plain.partition(":")[2]))
        logs.learn(*(credential for _, credential in found))
        short = {c: what for what, c in reversed(found) if len(c) < logs.MIN_SECRET}
        problems += [
            f"{where} holds {what} shorter than {logs.MIN_SECRET} characters: too short to be "
            "masked reliably in build logs"
            for what in short.values()
        ]
    if problems:
        raise ConfigError(problems)
