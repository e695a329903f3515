"""What ``ci-runner fleet`` reads and writes in Kubernetes: the apps' CronJobs, their state
ConfigMaps and Jobs (three lists, whatever the number of apps), its own record and credential
(reads by name; with a GitHub App also the Secret it keeps its installation token in, updated by
name when renewed), and the Jobs and Events it creates.

Nothing here decides: ``run/plan.py`` ``fleet_call`` does, ``run/fleet.py`` joins the two."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import parsing as p
from ..errors import ConfigError, Conflict, KubernetesError, NotFound, shorten
from . import token_secret
from .client import CONFIGMAPS, CRONJOBS, EVENTS, JOBS, SECRETS, Kind, Kube, Obj
from .state import OUR_LABELS

log = logging.getLogger(__name__)

STATE_SELECTOR = ",".join(OUR_LABELS[:1]) + "=ci-runner," + OUR_LABELS[1]
"""The labels every state ConfigMap carries (``state.to_configmap``): managed-by=ci-runner and
a release."""
JOB_SELECTOR = "ci-runner.io/app"
"""Every per-app runner Job carries this label (the chart's jobTemplate labels, which
``kubectl create job --from`` and the fleet copy); build Jobs do not."""
NOT_BEFORE = "ci-runner.io/github-not-before"
"""On the fleet's record: GitHub asked us to wait until then (epoch seconds)."""
DEFERRED = "ci-runner.io/deferred"
"""On the fleet's record: the apps the last run could not ask, asked first by the next."""
MANUAL = {"cronjob.kubernetes.io/instantiate": "manual"}
SUSPENDED = "ci-runner.io/suspended"
"""On an app's CronJob: "true" keeps the fleet from creating its Jobs. In fleet mode every
CronJob is suspended, so ``spec.suspend`` cannot say that the app itself is (the chart sets this
for ``apps[].suspend``; ``kubectl annotate`` pauses one app by hand)."""


def suspended(cronjob: Obj) -> bool:
    """Whether the app itself is suspended (not only its schedule, by fleet mode)."""
    notes = (cronjob.get("metadata") or {}).get("annotations") or {}
    return str(notes.get(SUSPENDED, "")).lower() == "true"


@dataclass(frozen=True)
class Entry:
    """What the fleet remembers of one app (a key of its record ConfigMap, the CronJob's name):
    GitHub's last answer for the app's branch with its ETag, and the problem last reported (an
    Event is recorded only when that changes). Nothing here changes while nothing changes, so an
    idle run writes nothing."""

    repo: str = ""
    branch: str = ""
    sha: str | None = None
    etag: str | None = None
    problem: str | None = None

    def etag_for(self, repo: str, branch: str) -> tuple[str, str] | None:
        """(etag, sha) worth sending for ``repo``'s ``branch``: only for the same question."""
        if self.etag and self.sha and (self.repo, self.branch) == (repo, branch):
            return self.etag, self.sha
        return None

    def as_json(self) -> str:
        fields = {
            "repo": self.repo,
            "branch": self.branch,
            "sha": self.sha,
            "etag": self.etag,
            "problem": self.problem,
        }
        return json.dumps({k: v for k, v in fields.items() if v}, separators=(",", ":"))

    @classmethod
    def of(cls, text: str) -> Entry:
        """An entry as written; anything else (a hand edit) is an empty one."""
        try:
            raw = json.loads(text)
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            return cls()
        text_of = {k: raw.get(k) if isinstance(raw.get(k), str) else None for k in raw}
        return cls(
            repo=text_of.get("repo") or "",
            branch=text_of.get("branch") or "",
            sha=text_of.get("sha"),
            etag=text_of.get("etag"),
            problem=text_of.get("problem"),
        )


@dataclass(frozen=True)
class Record:
    """The fleet's own ConfigMap, as read: an Entry per app, GitHub's wait (if any), and the
    apps the last run could not ask."""

    entries: dict[str, Entry]
    not_before: int
    deferred: tuple[str, ...]
    body: Obj
    """The ConfigMap read (its resourceVersion makes the write conditional)."""

    def with_entries(
        self, entries: dict[str, Entry], not_before: int, deferred: tuple[str, ...]
    ) -> Obj:
        """The ConfigMap to write: the same object with ``entries`` as its data."""
        metadata = dict(self.body["metadata"])
        annotations = dict(metadata.get("annotations") or {})
        annotations.pop(NOT_BEFORE, None)
        annotations.pop(DEFERRED, None)
        if not_before:
            annotations[NOT_BEFORE] = str(not_before)
        if deferred:
            annotations[DEFERRED] = ",".join(deferred)
        metadata["annotations"] = annotations
        data = {name: entry.as_json() for name, entry in sorted(entries.items())}
        return {**self.body, "metadata": metadata, "data": data}


def _read_own(kube: Kube, kind: Kind, namespace: str, name: str, setting: str) -> Obj | None:
    """One of the fleet's own objects, which its Role lets it read by name only: a 403 means the
    setting names another object than the one the chart granted (exit 2, not an outage)."""
    try:
        return kube.read(kind, namespace, name)
    except KubernetesError as e:
        if e.status != 403:
            raise
        raise ConfigError(
            [
                f"{setting} {namespace}/{name}: this identity may not read it ({e}); the fleet's "
                "Role grants its own record and token Secret by name: use the names it grants"
            ]
        ) from e


def read_record(kube: Kube, namespace: str, name: str) -> Record:
    """The fleet's record; ConfigError (exit 2) when it does not exist: the fleet may not
    create it (``create`` cannot be limited to one name), the chart does."""
    cm = _read_own(kube, CONFIGMAPS, namespace, name, "FLEET_RECORD")
    if cm is None:
        raise ConfigError(
            [
                f"FLEET_RECORD ConfigMap {namespace}/{name} does not exist: the chart creates it "
                f"with fleet.enabled (else `kubectl create configmap {name} -n {namespace}`)"
            ]
        )
    data = cm.get("data") or {}
    notes = (cm.get("metadata") or {}).get("annotations") or {}
    wait = notes.get(NOT_BEFORE) or ""
    return Record(
        {key: Entry.of(str(value)) for key, value in data.items()},
        int(wait) if wait.isascii() and wait.isdigit() else 0,
        tuple(name for name in str(notes.get(DEFERRED) or "").split(",") if name),
        cm,
    )


def write_record(
    kube: Kube,
    record: Record,
    entries: dict[str, Entry],
    not_before: int,
    deferred: tuple[str, ...],
) -> bool:
    """Write the record if it changed and nobody wrote it since it was read; False otherwise
    (a conflict is a warning: the next run learns again what this one learnt, at the cost of
    some billable requests)."""
    same = (entries, not_before, deferred) == (record.entries, record.not_before, record.deferred)
    if same:
        return False
    try:
        kube.save(CONFIGMAPS, record.with_entries(entries, not_before, deferred))
    except (Conflict, NotFound) as e:
        log.warning("the fleet's record was not written (another writer?): %s", e)
        return False
    return True


@dataclass(frozen=True)
class AppKey:
    """The fleet's GitHub App, from FLEET_APP_SECRET (the keys the chart's per-app
    ``githubAppSecret`` has)."""

    app_id: str
    installation: int
    private_key: str

    def __repr__(self) -> str:  # never the key, in a traceback or a log line
        return f"AppKey(app_id={self.app_id!r}, installation={self.installation})"


APP_KEYS = ("app-id", "installation-id", "private-key")


def _text(secret: Obj, key: str) -> str:
    encoded = (secret.get("data") or {}).get(key)
    try:
        return base64.b64decode(str(encoded or ""), validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def read_token(kube: Kube, namespace: str, name: str) -> str:
    """The fleet's GitHub token: key ``token`` of Secret ``name``, read by name."""
    secret = _read_own(kube, SECRETS, namespace, name, "FLEET_TOKEN_SECRET")
    if secret is None:
        raise ConfigError(
            [f"FLEET_TOKEN_SECRET {namespace}/{name} does not exist: create it with key 'token'"]
        )
    token = _text(secret, "token")
    if not token:
        raise ConfigError([f"FLEET_TOKEN_SECRET {namespace}/{name} has no key 'token'"])
    return token


def read_app(kube: Kube, namespace: str, name: str) -> AppKey:
    """The fleet's GitHub App: keys ``app-id``, ``installation-id`` and ``private-key`` of
    Secret ``name``, read by name; ConfigError (exit 2) naming what is missing or wrong."""
    secret = _read_own(kube, SECRETS, namespace, name, "FLEET_APP_SECRET")
    where = f"FLEET_APP_SECRET {namespace}/{name}"
    if secret is None:
        raise ConfigError(
            [f"{where} does not exist: create it with keys {', '.join(map(repr, APP_KEYS))}"]
        )
    text = {key: _text(secret, key) for key in APP_KEYS}
    problems = [f"{where} has no key {key!r}" for key, value in text.items() if not value]
    if problems:
        raise ConfigError(problems)
    try:
        app_id = p.app_id(text["app-id"])
    except ValueError as e:
        problems.append(f"{where} key 'app-id' {e}")
    try:
        installation = p.positive(text["installation-id"])
    except ValueError as e:
        problems.append(f"{where} key 'installation-id' {e}")
    key_problem = p.private_key_problem(text["private-key"])
    if key_problem:
        problems.append(f"{where} key 'private-key' {key_problem}")
    if problems:
        raise ConfigError(problems)
    return AppKey(app_id, installation, text["private-key"])


@dataclass(frozen=True)
class KeptToken:
    """The fleet's App installation token as kept in FLEET_APP_TOKEN_SECRET (None when it holds
    none, or none readable), with the Secret as read (its resourceVersion makes the write
    conditional)."""

    token: str | None
    expires: datetime | None
    secret: Obj


def read_kept(kube: Kube, namespace: str, name: str) -> KeptToken:
    """The Secret the fleet keeps its installation token in; ConfigError (exit 2) when it does
    not exist: the fleet may not create it (``create`` cannot be limited to one name)."""
    secret = _read_own(kube, SECRETS, namespace, name, "FLEET_APP_TOKEN_SECRET")
    if secret is None:
        raise ConfigError(
            [
                f"FLEET_APP_TOKEN_SECRET Secret {namespace}/{name} does not exist: the chart "
                "creates it with fleet.appSecret (else `kubectl create secret generic "
                f"{name} -n {namespace}`)"
            ]
        )
    token, expires = token_secret.kept(secret)
    return KeptToken(token, expires, secret)


def keep_token(kube: Kube, kept: KeptToken, token: str, expires: datetime) -> KeptToken:
    """Keep ``token`` (and its expiry) in the Secret read as ``kept``: an update by name, over
    what was read (Conflict when another fleet run wrote it since). The maker's labels and
    annotations stay."""
    meta = dict(kept.secret["metadata"])
    annotations = dict(meta.get("annotations") or {})
    annotations[token_secret.EXPIRES] = expires.astimezone(UTC).isoformat(timespec="seconds")
    meta["annotations"] = annotations
    body: Obj = {
        **{k: v for k, v in kept.secret.items() if k not in {"data", "stringData"}},
        "metadata": meta,
        "type": kept.secret.get("type") or "Opaque",
        "data": {token_secret.TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }
    return KeptToken(token, expires, kube.save(SECRETS, body))


def list_cronjobs(kube: Kube, namespace: str, selector: str) -> list[Obj]:
    """The apps' CronJobs, by name."""
    found = kube.query(CRONJOBS, namespace, label_selector=selector)
    return sorted(found, key=lambda cj: str(cj["metadata"]["name"]))


def list_states(kube: Kube, namespace: str) -> dict[str, Obj]:
    """Every release's state ConfigMap in ``namespace``, by name."""
    found = kube.query(CONFIGMAPS, namespace, label_selector=STATE_SELECTOR)
    return {str(cm["metadata"]["name"]): cm for cm in found}


def finished(job: Obj) -> bool:
    """A Job with a Complete or Failed condition (the Job controller's terminal ones)."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(
        c.get("type") in {"Complete", "Failed"} and c.get("status") == "True" for c in conditions
    )


def active_jobs(kube: Kube, namespace: str) -> dict[str, str]:
    """CronJob name -> the name of a Job made from it that has not finished.

    A Job is tied to its CronJob by its ownerReference (the CronJob controller's, kubectl's
    and the fleet's Jobs all carry one); the CronJob's ``status.active`` would not do: the
    CronJob controller lists there only the Jobs it created itself (pkg/controller/cronjob)."""
    active: dict[str, str] = {}
    for job in kube.query(JOBS, namespace, label_selector=JOB_SELECTOR):
        if finished(job):
            continue
        meta = job.get("metadata") or {}
        for owner in meta.get("ownerReferences") or []:
            if owner.get("kind") == "CronJob" and owner.get("name"):
                active.setdefault(str(owner["name"]), str(meta.get("name")))
    return active


def environment(cronjob: Obj) -> tuple[dict[str, str], list[str]]:
    """The plain environment of a CronJob's runner container (its ``value`` entries) and the
    names of the variables that come from elsewhere (``valueFrom``: a Secret's key, say),
    which are never resolved: the fleet never reads an app's credentials."""
    spec = ((cronjob.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    runner = next((c for c in containers if c.get("name") == "ci-runner"), None)
    if runner is None and containers:
        runner = containers[0]
    plain: dict[str, str] = {}
    elsewhere: list[str] = []
    for entry in (runner or {}).get("env") or []:
        name = str(entry.get("name") or "")
        if "value" in entry and "valueFrom" not in entry:
            plain[name] = str(entry.get("value") or "")
        elif name:
            elsewhere.append(name)
    return plain, elsewhere


def job_from_cronjob(cronjob: Obj, name: str) -> Obj:
    """The Job ``kubectl create job NAME --from=cronjob/CRONJOB`` makes (kubectl's
    pkg/cmd/create/create_job.go, ``createJobFromCronJob``): the jobTemplate's spec and
    labels, its annotations plus ``cronjob.kubernetes.io/instantiate: manual``, and an
    ownerReference to the CronJob with ``controller: true`` and no ``blockOwnerDeletion`` (so
    that no cronjobs/finalizers permission is needed; the Job is still garbage-collected with
    its CronJob)."""
    meta = cronjob["metadata"]
    template = cronjob["spec"]["jobTemplate"]
    template_meta = template.get("metadata") or {}
    job_meta: Obj = {
        "name": name,
        "namespace": meta["namespace"],
        "annotations": {**MANUAL, **(template_meta.get("annotations") or {})},
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
            }
        ],
    }
    if template_meta.get("labels"):
        job_meta["labels"] = dict(template_meta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": template["spec"]}


def job_name(cronjob: str, now: datetime) -> str:
    """A name for the fleet's Job of ``cronjob``: ``-f`` and the time in hex seconds, at most
    11 characters as the CronJob controller's own suffix (the chart keeps CronJob names to 52,
    so the Job's stays within 63)."""
    return f"{cronjob}-f{int(now.timestamp()):x}"


def create_job(kube: Kube, body: Obj) -> bool:
    """Create the Job; False when one of that name exists already (another fleet run's)."""
    try:
        kube.create(JOBS, body)
    except Conflict:
        return False
    return True


def cronjob_event(cronjob: Obj, reason: str, message: str) -> Obj:
    """A Warning Event about an app's CronJob: ``kubectl describe cronjob`` shows it."""
    meta = cronjob["metadata"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": shorten(message, 1000),
        "type": "Warning",
        "source": {"component": "ci-runner-fleet"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def emit(kube: Kube, cronjob: Obj, reason: str, message: str) -> None:
    """Record one Event about ``cronjob``; a failure is a warning, never the fleet's."""
    namespace = cronjob["metadata"]["namespace"]
    body = cronjob_event(cronjob, reason, message)
    try:
        kube.request("POST", EVENTS.path(namespace), "recording an Event", body=body)
    except KubernetesError as e:
        log.warning("could not record Event %s: %s", reason, e)
