"""What the control plane would do after a write: defaulting and a few small controllers.

Everything runs synchronously inside the write that triggers it (under the store lock), so a
created Job has its Pod, and with the default rule is Complete, before the POST is answered; the
watch history still shows each step (Job ADDED, Pod ADDED, Job MODIFIED, ...) in order.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .jobs import CONTROLLER_UID_LABELS, JOB_NAME_LABELS, JobController, owned
from .resources import Resource, find
from .status import condition, owner_reference
from .store import ApiError, Obj, Store, now

_MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")


def _served(api_version: str, name: str) -> Resource:
    res = find(api_version, name)
    assert res is not None, f"{api_version} {name} is missing from the resource table"
    return res


REPLICASETS = _served("apps/v1", "replicasets")
CONFIGMAPS = _served("v1", "configmaps")
SERVICEACCOUNTS = _served("v1", "serviceaccounts")
FAKE_CA = "-----BEGIN CERTIFICATE-----\nZW11bGF0b3I=\n-----END CERTIFICATE-----\n"
"""Not a real certificate: the emulator serves plain HTTP."""
Defaulter = Callable[[Resource, Obj, Obj | None], None]
"""Defaults one written object of a kind in place (given the stored one on an update), or
refuses it with an ApiError as the API server's validation would."""


@dataclass
class Controllers:
    """Defaulting plus the Job, Deployment, ReplicaSet, StatefulSet and DaemonSet controllers."""

    store: Store
    jobs: JobController = field(init=False)
    _ips: itertools.count[int] = field(default_factory=lambda: itertools.count(10))
    _busy: set[str] = field(default_factory=set)
    _defaulters: dict[tuple[str, str], Defaulter] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Services are the one kind whose defaulting has state: this emulator's cluster IPs.
        self._defaulters = {**DEFAULTERS, ("", "services"): self._default_service}
        self.jobs = JobController(self.store)

    def install(self) -> None:
        """Hook defaulting and the controllers into the store."""
        self.store.defaulter = self.default
        self.store.hooks.append(self.react)

    # ---- defaulting and validation ---------------------------------------------------------

    def default(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        """Fill in what the real API server's defaulting would (only what clients rely on), and
        refuse what its validation would, by kind (``old``: the stored object on an update)."""
        if _has_spec(res):
            obj.setdefault("spec", {})
        defaulter = self._defaulters.get((res.group, res.name))
        if defaulter is not None:
            defaulter(res, obj, old)

    def _default_service(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        """Services: type ClusterIP with a cluster IP of this emulator's own (kept on updates)."""
        spec = obj["spec"]
        spec.setdefault("type", "ClusterIP")
        old_spec = (old or {}).get("spec") or {}
        if spec["type"] != "ExternalName":
            if "clusterIP" not in spec and old_spec.get("clusterIP"):
                spec["clusterIP"] = old_spec["clusterIP"]
            if not spec.get("clusterIP"):
                n = next(self._ips)
                spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})

    # ---- reacting to changes ------------------------------------------------------------------

    def react(self, event: str, res: Resource, obj: Obj) -> None:
        """Run the controller for what just changed (not again for its own writes)."""
        uid = obj["metadata"].get("uid", "")
        if event == "DELETED" or uid in self._busy:
            return
        self._busy.add(uid)
        try:
            self._react(event, res, obj)
        finally:
            self._busy.discard(uid)

    def _react(self, event: str, res: Resource, obj: Obj) -> None:
        kind = (res.group, res.name)
        if kind == ("batch", "jobs"):
            self.jobs.sync(obj)
        elif kind == ("apps", "deployments"):
            self._deployment(res, obj)
        elif kind == ("apps", "replicasets"):
            self._replicas_ready(res, obj, _pod_count(obj))
        elif kind == ("apps", "statefulsets"):
            self._statefulset(res, obj)
        elif kind == ("apps", "daemonsets"):
            self._daemonset(res, obj)
        elif kind == ("", "pods") and event == "ADDED" and not owned(obj):
            self.jobs.run_bare_pod(obj)
        elif kind in (("", "secrets"), ("", "configmaps")):
            self.jobs.config_changed(obj["metadata"]["namespace"])
        elif kind == ("", "namespaces") and event == "ADDED":
            self._populate_namespace(obj["metadata"]["name"])

    def _populate_namespace(self, namespace: str) -> None:
        """What every new namespace gets from the control plane."""
        self.store.create(
            CONFIGMAPS,
            namespace,
            {
                "metadata": {
                    "name": "kube-root-ca.crt",
                    "annotations": {
                        "kubernetes.io/description": "Contains a CA bundle that can be used to"
                        " verify the kube-apiserver when using internal endpoints such as the"
                        " internal service IP or kubernetes.default.svc. No other usage is"
                        " guaranteed across distributions of Kubernetes clusters."
                    },
                },
                "data": {"ca.crt": FAKE_CA},
            },
        )
        self.store.create(SERVICEACCOUNTS, namespace, {"metadata": {"name": "default"}})

    def _set_status(self, res: Resource, obj: Obj, status: Obj) -> Obj:
        return self.store.set_status(res, obj, status)

    # Workloads ---------------------------------------------------------------------------------

    def _deployment(self, res: Resource, dep: Obj) -> None:
        meta = dep["metadata"]
        if (dep.get("status") or {}).get("observedGeneration") == meta.get("generation"):
            return
        replicas = int(dep["spec"].get("replicas", 1))
        rs_name, revision = self._roll_out(dep, replicas)
        dep = self.store.get(res, meta["namespace"], meta["name"]) or dep
        if (dep["metadata"].get("annotations") or {}).get(REVISION) != revision:
            dep["metadata"].setdefault("annotations", {})[REVISION] = revision
            dep["metadata"].pop("resourceVersion", None)
            dep = self.store.update(res, meta["namespace"], meta["name"], dep)
        self._set_status(res, dep, _deployment_ready(dep, rs_name, replicas))

    def _roll_out(self, dep: Obj, replicas: int) -> tuple[str, str]:
        """Give the Deployment's template a ReplicaSet of ``replicas`` and scale the older ones
        to 0; the ReplicaSet's name and revision."""
        meta, spec = dep["metadata"], dep["spec"]
        template = copy.deepcopy(spec.get("template") or {})
        digest = _hash(template)
        owned, _ = self.store.list(
            REPLICASETS, meta["namespace"], lambda rs: _owned_by(rs, meta["uid"])
        )
        revisions = [
            int((rs["metadata"].get("annotations") or {}).get(REVISION, "0")) for rs in owned
        ]
        name = f"{meta['name']}-{digest}"
        current = next((rs for rs in owned if rs["metadata"]["name"] == name), None)
        revision = str(max(revisions, default=0) + 1)
        if current is None:
            labels = {**((template.get("metadata") or {}).get("labels") or {})}
            labels["pod-template-hash"] = digest
            template.setdefault("metadata", {})["labels"] = labels
            selector = copy.deepcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = digest
            self.store.create(
                REPLICASETS,
                meta["namespace"],
                {
                    "metadata": {
                        "name": name,
                        "namespace": meta["namespace"],
                        "labels": labels,
                        "annotations": {REVISION: revision},
                        "ownerReferences": [owner_reference(dep)],
                    },
                    "spec": {"replicas": replicas, "selector": selector, "template": template},
                },
            )
        else:
            revision = (current["metadata"].get("annotations") or {}).get(REVISION, revision)
            if current["spec"].get("replicas") != replicas:
                self._update_spec(REPLICASETS, current, {"replicas": replicas})
        for rs in owned:
            if rs["metadata"]["name"] != name and rs["spec"].get("replicas"):
                self._update_spec(REPLICASETS, rs, {"replicas": 0})
        return name, revision

    def _update_spec(self, res: Resource, obj: Obj, changes: Obj) -> Obj:
        new = {**obj, "spec": {**obj["spec"], **changes}}
        new["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
        return self.store.update(res, obj["metadata"]["namespace"], obj["metadata"]["name"], new)

    def _replicas_ready(self, res: Resource, obj: Obj, count: int) -> None:
        status = obj.get("status") or {}
        generation = obj["metadata"].get("generation", 1)
        if status.get("observedGeneration") == generation:
            return
        new: Obj = {"observedGeneration": generation, "replicas": count}
        if count:
            new.update(fullyLabeledReplicas=count, readyReplicas=count, availableReplicas=count)
        self._set_status(res, obj, new)

    def _statefulset(self, res: Resource, sts: Obj) -> None:
        generation = sts["metadata"].get("generation", 1)
        if (sts.get("status") or {}).get("observedGeneration") == generation:
            return
        count = _pod_count(sts)
        revision = f"{sts['metadata']['name']}-{_hash(sts['spec'].get('template') or {})}"
        status: Obj = {
            "observedGeneration": generation,
            "replicas": count,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        if count:
            status.update(
                readyReplicas=count,
                currentReplicas=count,
                updatedReplicas=count,
                availableReplicas=count,
            )
        self._set_status(res, sts, status)

    def _daemonset(self, res: Resource, ds: Obj) -> None:
        generation = ds["metadata"].get("generation", 1)
        if (ds.get("status") or {}).get("observedGeneration") == generation:
            return
        status = {
            "observedGeneration": generation,
            "currentNumberScheduled": 1,
            "desiredNumberScheduled": 1,
            "numberAvailable": 1,
            "numberMisscheduled": 0,
            "numberReady": 1,
            "updatedNumberScheduled": 1,
        }
        self._set_status(res, ds, status)


REVISION = "deployment.kubernetes.io/revision"


def _has_spec(res: Resource) -> bool:
    return res.name not in (
        "configmaps",
        "secrets",
        "serviceaccounts",
        "events",
        "endpoints",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    )


# ---- defaulting and validation, by kind ------------------------------------------------------


def _default_namespace(res: Resource, obj: Obj, old: Obj | None) -> None:
    """Namespaces: the ``kubernetes.io/metadata.name`` label, the finalizer, phase Active."""
    meta = obj.setdefault("metadata", {})
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    obj["spec"].setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}


def _default_secret(res: Resource, obj: Obj, old: Obj | None) -> None:
    """Secrets: type Opaque, ``stringData`` folded into ``data``; immutable ones stay so."""
    obj.setdefault("type", "Opaque")
    for key, value in (obj.pop("stringData", None) or {}).items():
        obj.setdefault("data", {})[key] = base64.b64encode(value.encode()).decode()
    _check_immutable_data(res, obj, old)


def _check_immutable_data(res: Resource, obj: Obj, old: Obj | None) -> None:
    """An immutable ConfigMap or Secret refuses any change of its data."""
    if old is None or not old.get("immutable"):
        return
    for field_name in ("data", "binaryData", "immutable"):
        if obj.get(field_name) != old.get(field_name):
            raise ApiError(
                422,
                f'{res.kind} "{obj["metadata"]["name"]}" is invalid: {field_name}:'
                " Forbidden: field is immutable when `immutable` is set",
                "Invalid",
            )


def _default_pod(res: Resource, obj: Obj, old: Obj | None) -> None:
    """Pods: the pod spec defaults; a new Pod is Pending."""
    _default_pod_spec(obj["spec"])
    if old is None:
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}


def _default_pvc(res: Resource, obj: Obj, old: Obj | None) -> None:
    """PersistentVolumeClaims: Filesystem, and Bound at once."""
    obj["spec"].setdefault("volumeMode", "Filesystem")
    obj["status"] = (old or {}).get("status") or {"phase": "Bound"}


def _default_deployment(res: Resource, obj: Obj, old: Obj | None) -> None:
    """Deployments: one replica, RollingUpdate 25 %/25 %, the history and deadline limits."""
    spec = obj["spec"]
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    _default_template(spec)


def _default_replicaset(res: Resource, obj: Obj, old: Obj | None) -> None:
    """ReplicaSets: one replica."""
    obj["spec"].setdefault("replicas", 1)
    _default_template(obj["spec"])


def _default_statefulset(res: Resource, obj: Obj, old: Obj | None) -> None:
    """StatefulSets: one replica, OrderedReady, RollingUpdate from partition 0, PVCs retained."""
    spec = obj["spec"]
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if strategy.get("type") == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {"partition": 0})
    spec.setdefault(
        "persistentVolumeClaimRetentionPolicy",
        {"whenDeleted": "Retain", "whenScaled": "Retain"},
    )
    _default_template(spec)


def _default_daemonset(res: Resource, obj: Obj, old: Obj | None) -> None:
    """DaemonSets: RollingUpdate, one unavailable at a time."""
    spec = obj["spec"]
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if strategy.get("type") == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {"maxUnavailable": 1, "maxSurge": 0})
    _default_template(spec)


def _default_job_kind(res: Resource, obj: Obj, old: Obj | None) -> None:
    """Jobs: see ``_default_job``; on an update, what may not change has not."""
    _default_job(obj, obj["spec"])
    if old is not None:
        _check_job_immutable(obj, old)


def _default_cronjob(res: Resource, obj: Obj, old: Obj | None) -> None:
    """CronJobs: policy Allow, not suspended, history limits 3 and 1, a defaulted Job template."""
    spec = obj["spec"]
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = spec.setdefault("jobTemplate", {}).setdefault("spec", {})
    _default_template(job_spec, None)
    obj.setdefault("status", {})


def _default_lease(res: Resource, obj: Obj, old: Obj | None) -> None:
    """Leases: acquireTime and renewTime must be MicroTimes."""
    for name in ("acquireTime", "renewTime"):
        _micro_time(obj["spec"], name, f"spec.{name}")


def _default_event(res: Resource, obj: Obj, old: Obj | None) -> None:
    """Events of both APIs: eventTime a MicroTime, the other times in UTC; a core/v1 Event must
    sit in the namespace of the object it is about."""
    _micro_time(obj, "eventTime", "eventTime")
    for name in (
        "firstTimestamp",
        "lastTimestamp",
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
    ):
        _time(obj, name)
    if res.group == "":
        _check_event_namespace(obj)


DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "namespaces"): _default_namespace,
    ("", "secrets"): _default_secret,
    ("", "configmaps"): _check_immutable_data,
    ("", "pods"): _default_pod,
    ("", "persistentvolumeclaims"): _default_pvc,
    ("apps", "deployments"): _default_deployment,
    ("apps", "replicasets"): _default_replicaset,
    ("apps", "statefulsets"): _default_statefulset,
    ("apps", "daemonsets"): _default_daemonset,
    ("batch", "jobs"): _default_job_kind,
    ("batch", "cronjobs"): _default_cronjob,
    ("coordination.k8s.io", "leases"): _default_lease,
    ("", "events"): _default_event,
    ("events.k8s.io", "events"): _default_event,
}
"""Per (group, resource), what the API server does to a written object before storing it.
Services are added per emulator (``Controllers._default_service``): their IPs are counted."""


def _micro_time(obj: Obj, key: str, field_name: str) -> None:
    """Lease and Event times are MicroTime: the real server wants six fractional digits, and
    stores them in UTC."""
    value = obj.get(key)
    if value is None:
        return
    if not (isinstance(value, str) and _MICRO_TIME.match(value)):
        raise ApiError(
            400,
            f'{field_name}: parsing time "{value}" as "2006-01-02T15:04:05.000000Z07:00": cannot'
            ' parse as ".000000" (MicroTime needs six fractional digits)',
        )
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    obj[key] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_event_namespace(event: Obj) -> None:
    """A core/v1 Event lives in the namespace of the object it is about (or in default)."""
    namespace = event["metadata"].get("namespace", "")
    involved = event.setdefault("involvedObject", {}).get("namespace") or ""
    if (involved and involved != namespace) or (not involved and namespace not in ("", "default")):
        raise ApiError(
            422,
            f'Event "{event["metadata"].get("name")}" is invalid: involvedObject.namespace:'
            f' Invalid value: "{involved}": does not match event.namespace',
            "Invalid",
        )


def _time(obj: Obj, key: str) -> None:
    """A metav1.Time is stored in UTC, to the second."""
    value = obj.get(key)
    if not isinstance(value, str):
        return
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError as e:
        raise ApiError(400, f'{key}: parsing time "{value}": not RFC 3339') from e
    obj[key] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _default_container(container: Obj) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = container.get("image", "")
    last = image.rsplit("/", 1)[-1]
    latest = "@" not in last and (":" not in last or last.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def _default_pod_spec(spec: Obj, restart_policy: str | None = "Always") -> None:
    if restart_policy:
        spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            _default_container(container)


def _default_template(spec: Obj, restart_policy: str | None = "Always") -> None:
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    _default_pod_spec(template.setdefault("spec", {}), restart_policy)


def _default_job(job: Obj, spec: Obj) -> None:
    meta = job["metadata"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("suspend", False)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", False)
    template = spec.setdefault("template", {})
    _default_pod_spec(template.setdefault("spec", {}), None)
    if template["spec"].get("restartPolicy") not in ("Never", "OnFailure"):
        raise ApiError(
            422,
            f'Job.batch "{meta.get("name")}" is invalid: spec.template.spec.restartPolicy:'
            ' Required value: valid values: "OnFailure", "Never"',
            "Invalid",
        )
    if not spec["manualSelector"] and meta.get("uid"):
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        for key in JOB_NAME_LABELS:
            labels.setdefault(key, meta["name"])
        for key in CONTROLLER_UID_LABELS:
            labels.setdefault(key, meta["uid"])
        spec.setdefault(
            "selector",
            {"matchLabels": {CONTROLLER_UID_LABELS[0]: labels[CONTROLLER_UID_LABELS[0]]}},
        )


def _check_job_immutable(job: Obj, old: Obj) -> None:
    """A Job's pod template and selector cannot change (unless it is suspended)."""
    if old["spec"].get("suspend"):
        return
    for field_name in ("template", "selector", "completionMode"):
        if job["spec"].get(field_name) != old["spec"].get(field_name):
            raise ApiError(
                422,
                f'Job.batch "{job["metadata"]["name"]}" is invalid: spec.{field_name}: Invalid'
                " value: field is immutable",
                "Invalid",
            )


def _deployment_ready(dep: Obj, rs_name: str, replicas: int) -> Obj:
    """A Deployment status that helm 3's ``--wait`` and helm 4's kstatus take as rolled out."""
    stamp = now()
    progressed = f'ReplicaSet "{rs_name}" has successfully progressed.'
    status: Obj = {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            condition(
                "Available",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                stamp,
                update=True,
            ),
            condition("Progressing", "NewReplicaSetAvailable", progressed, stamp, update=True),
        ],
    }
    if not replicas:
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
            del status[key]
    return status


def _owned_by(obj: Obj, uid: str) -> bool:
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])


def _pod_count(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def _hash(value: Any) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))
