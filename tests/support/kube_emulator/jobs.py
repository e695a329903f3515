"""The Job controller, run by the test's rules.

A Job gets one Pod; how it ends is the newest matching ``JobRule``'s outcome, once the Pod can
start (``pods.PodStarter``: the outcomes ``unschedulable`` and ``image-pull-error``, or a
missing Secret or ConfigMap, keep it Pending). The outcome ``pod-forbidden`` stops the Job
before it has a Pod. A Pod stopped by a missing Secret or ConfigMap goes on by itself once that
is written; every other stop lasts until ``release``.
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass
from typing import Literal, get_args

from .pods import PodStarter
from .recorder import Recorder
from .resources import Resource, find
from .status import condition, owner_reference, pod_init_failed, pod_running, pod_terminated
from .store import Obj, Store, now, random_suffix

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
CONTROLLER_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
Outcome = Literal[
    "succeed", "fail", "init-fail", "hold", "image-pull-error", "unschedulable", "pod-forbidden"
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)


def _served(api_version: str, name: str) -> Resource:
    res = find(api_version, name)
    assert res is not None, f"{api_version} {name} is missing from the resource table"
    return res


JOBS = _served("batch/v1", "jobs")
PODS = _served("v1", "pods")
FAILURES = {
    "BackoffLimitExceeded": "Job has reached the specified backoff limit",
    "DeadlineExceeded": "Job was active longer than specified deadline",
}
"""The Job controller's messages for its failure reasons (pkg/controller/job/job_controller.go)."""


@dataclass(frozen=True)
class JobRule:
    """How Jobs that match behave (see ``Emulator.jobs.behave``)."""

    outcome: str
    namespace: str | None = None
    name: str | None = None
    labels: dict[str, str] | None = None
    log: str = ""
    termination_message: str | None = None
    reason: str | None = None
    message: str | None = None
    """What the registry, scheduler or admission said, for the outcomes that stop a Job."""
    exit_code: int = 1
    """``init-fail``: the exit code of the first init container (its message:
    ``termination_message``)."""

    def matches(self, job: Obj) -> bool:
        """Whether this rule applies to a Job (namespace, name glob, labels)."""
        meta = job["metadata"]
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.name is not None and not fnmatch.fnmatchcase(meta["name"], self.name):
            return False
        labels = meta.get("labels") or {}
        return all(labels.get(k) == v for k, v in (self.labels or {}).items())


BARE = JobRule("hold")
"""A Pod no Job owns runs, once it can start, until it is deleted."""


class JobController:
    """Jobs, their Pods, and the Pods that wait for a Secret or ConfigMap."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rules: list[JobRule] = []
        self.events = Recorder(store)
        self.pods = PodStarter(store, self.events)
        self._rule_of_job: dict[str, JobRule] = {}

    def rule_for(self, job: Obj) -> JobRule:
        """The last rule matching a Job; the default rule succeeds."""
        for rule in reversed(self.rules):
            if rule.matches(job):
                return rule
        return JobRule("succeed")

    # ---- events from the store ------------------------------------------------------------------

    def sync(self, job: Obj) -> None:
        """Start a Job that is new or just unsuspended: its Pod, then as far as the Pod gets."""
        if job["spec"].get("suspend") or (job.get("status") or {}).get("startTime"):
            return
        rule = self.rule_for(job)
        self._rule_of_job[job["metadata"]["uid"]] = rule
        status: Obj = {"startTime": now()}
        if rule.outcome == "pod-forbidden":
            job = self._set_status(JOBS, job, {**status, **_IDLE})
            self._forbid(job, rule)
            return
        pod = self._create_pod(job, rule)
        job = self._set_status(JOBS, job, {**status, "active": 1, **_IDLE})
        if self._can_start(pod, rule):
            self._run(job, pod, rule)

    def run_bare_pod(self, pod: Obj) -> None:
        """A Pod no Job owns: Running and ready once the kubelet can start it."""
        if self._can_start(pod, BARE):
            self._run(None, pod, BARE)

    def config_changed(self, namespace: str) -> None:
        """A Secret or ConfigMap was written: Pods waiting for one in its namespace retry."""
        for uid, name in self.pods.waiting_in(namespace):
            pod = self.store.get(PODS, namespace, name)
            job = self._job_of(pod) if pod is not None else None
            if pod is None or pod["metadata"]["uid"] != uid or (job is None and owned(pod)):
                self.pods.forget(uid)  # gone, or its Job has ended
                continue
            rule = BARE if job is None else self._rule_of_job.get(job["metadata"]["uid"], BARE)
            if self._can_start(pod, rule):
                self._run(job, self.store.get(PODS, namespace, name) or pod, rule)

    # ---- test controls --------------------------------------------------------------------------

    def release(self, namespace: str, name: str, outcome: str) -> None:
        """End a Job that has not finished (held, or stopped before its Pod could run)."""
        with self.store.cond:
            job = self.store.get(JOBS, namespace, name)
            if job is None:
                raise KeyError(f"no Job {namespace}/{name}")
            if _finished(job):
                raise ValueError(f"Job {namespace}/{name} has already finished")
            rule = self._rule_of_job.get(job["metadata"]["uid"], JobRule("succeed"))
            pod = next(iter(self._pods(job)), None)
            if pod is None and rule.outcome != "pod-forbidden":
                raise KeyError(f"Job {namespace}/{name} has no Pod")
            if pod is not None:
                self.pods.forget(pod["metadata"]["uid"])
            ran = pod is not None and (pod.get("status") or {}).get("phase") == "Running"
            if outcome == "succeed":
                if pod is None:
                    pod = self._create_pod(job, rule)
                    job = self._set_status(JOBS, job, {**job["status"], "active": 1})
                self._finish(job, pod, rule, "succeed")
            elif ran and pod is not None:
                self._finish(job, pod, rule, "fail")
            else:
                self._give_up(job, pod, rule)

    def _can_start(self, pod: Obj, rule: JobRule) -> bool:
        return self.pods.can_start(pod, rule.outcome, rule.message)

    def _forbid(self, job: Obj, rule: JobRule) -> None:
        """The Job controller's Pod create refused by admission: no Pod, a FailedCreate Event
        "Error creating: <the API error>" (pkg/controller/controller_utils.go ``createPods``).
        Validating admission sees the generated name (apiserver rest.AdmissionToValidateObjectFunc)
        and PodSecurity words its refusal "violates PodSecurity "<level>:<version>": ..."."""
        template = job["spec"].get("template") or {}
        first = ((template.get("spec") or {}).get("containers") or [{}])[0].get("name", "")
        reason = rule.message or (
            'violates PodSecurity "baseline:latest": privileged'
            f' (container "{first}" must not set securityContext.privileged=true)'
        )
        pod = f"{job['metadata']['name']}-{random_suffix()}"
        message = f'Error creating: pods "{pod}" is forbidden: {reason}'
        self.events.legacy(job, "Warning", "FailedCreate", message, "job-controller")

    # ---- running and ending ---------------------------------------------------------------------

    def _run(self, job: Obj | None, pod: Obj, rule: JobRule) -> None:
        """The Pod started: ``hold`` (and a bare Pod) keeps running, else the Job ends now."""
        if job is not None and rule.outcome in ("succeed", "fail", "init-fail"):
            self._finish(job, pod, rule, rule.outcome)
            return
        self._set_status(PODS, pod, pod_running(pod))
        if job is not None:
            job = self.store.get(JOBS, job["metadata"]["namespace"], job["metadata"]["name"]) or job
            self._set_status(JOBS, job, {**job["status"], "ready": 1})

    def _finish(self, job: Obj, pod: Obj, rule: JobRule, outcome: str) -> None:
        ok = outcome == "succeed"
        if outcome == "init-fail" and pod["spec"].get("initContainers"):
            ended = pod_init_failed(pod, rule.exit_code, rule.termination_message)
            self._set_status(PODS, pod, ended)
        else:
            self._set_status(PODS, pod, pod_terminated(pod, ok, rule.termination_message))
        stamp = now()
        status = {**job["status"], "active": 0, **_IDLE}
        if ok:
            done = "Reached expected number of succeeded pods"
            status["succeeded"] = 1
            status["completionTime"] = stamp
            status["conditions"] = [
                condition("SuccessCriteriaMet", "CompletionsReached", done, stamp),
                condition("Complete", "CompletionsReached", done, stamp),
            ]
        else:
            reason = rule.reason or "BackoffLimitExceeded"
            # The real controller retries backoffLimit times before giving up; report as many
            # failures as it would have seen (helm 3 compares status.failed with backoffLimit).
            failed = 1
            if reason == "BackoffLimitExceeded":
                failed = int(job["spec"].get("backoffLimit", 6)) + 1
            status["failed"] = failed
            status["conditions"] = _failed(reason, stamp)
        self._set_status(JOBS, job, status)

    def _give_up(self, job: Obj, pod: Obj | None, rule: JobRule) -> None:
        """A Job whose Pod never ran fails; on a real cluster only its deadline ends it
        (DeadlineExceeded), and the controller deletes the Pod that was still Pending."""
        status = {**job["status"], "active": 0, **_IDLE}
        if pod is not None:
            meta = pod["metadata"]
            background = {"propagationPolicy": "Background"}
            self.store.delete(PODS, meta["namespace"], meta["name"], background)
            status["failed"] = 1
        status["conditions"] = _failed(rule.reason or "DeadlineExceeded", now())
        self._set_status(JOBS, job, status)

    # ---- helpers --------------------------------------------------------------------------------

    def _create_pod(self, job: Obj, rule: JobRule) -> Obj:
        meta, template = job["metadata"], job["spec"].get("template") or {}
        labels = {**((template.get("metadata") or {}).get("labels") or {})}
        for key in JOB_NAME_LABELS:
            labels[key] = meta["name"]
        for key in CONTROLLER_UID_LABELS:
            labels[key] = meta["uid"]
        pod_meta: Obj = {
            "name": f"{meta['name']}-{random_suffix()}",
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(job)],
        }
        annotations = (template.get("metadata") or {}).get("annotations")
        if annotations:
            pod_meta["annotations"] = dict(annotations)
        pod = {"metadata": pod_meta, "spec": copy.deepcopy(template.get("spec") or {})}
        if rule.outcome != "unschedulable":  # else no node is ever bound
            pod["spec"]["nodeName"] = "emulator-node"
        created = self.store.create(PODS, meta["namespace"], pod)
        self.store.logs[(meta["namespace"], created["metadata"]["name"])] = rule.log
        return created

    def _pods(self, job: Obj) -> list[Obj]:
        uid = job["metadata"]["uid"]
        pods, _ = self.store.list(
            PODS,
            job["metadata"]["namespace"],
            lambda p: (p["metadata"].get("labels") or {}).get("controller-uid") == uid,
        )
        return pods

    def _job_of(self, pod: Obj) -> Obj | None:
        """The unfinished Job that controls a Pod, if any."""
        for ref in pod["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Job" and ref.get("controller"):
                job = self.store.get(JOBS, pod["metadata"]["namespace"], ref.get("name", ""))
                if job is not None and job["metadata"]["uid"] == ref.get("uid"):
                    return None if _finished(job) else job
        return None

    def _set_status(self, res: Resource, obj: Obj, status: Obj) -> Obj:
        return self.store.set_status(res, obj, status)


_IDLE: Obj = {"ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}


def _failed(reason: str, stamp: str) -> list[Obj]:
    message = FAILURES.get(reason, f"Job failed: {reason}")
    return [
        condition("FailureTarget", reason, message, stamp),
        condition("Failed", reason, message, stamp),
    ]


def _finished(job: Obj) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def owned(pod: Obj) -> bool:
    """Whether a Job controls this Pod (then the Job's rule runs it)."""
    return any(
        r.get("kind") == "Job" and r.get("controller")
        for r in pod["metadata"].get("ownerReferences") or []
    )
