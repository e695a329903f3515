"""What ``ci-runner run --dry-run`` prints: the commit, the build Job and the helm command."""

from __future__ import annotations

import logging
import shutil

import yaml

from ..config import Settings
from ..helm import deploy as helm
from ..helm.deploy import Deploy
from ..kube.build_job import build_job, check_secrets
from ..kube.client import Kube, namespace_problem
from ..kube.state import State
from .plan import Action, Plan

log = logging.getLogger(__name__)


def describe(s: Settings, state: State, plan: Plan, deploy: Deploy | None) -> str:
    """The --dry-run report: the Job and the helm command with the very values a run would
    deploy (``deploy`` is the checked chart of the head, None when nothing would be done)."""
    lines = [
        f"commit:  {plan.sha} ({s.repo} branch {s.branch})",
        f"state:   deployed {state.deployed_sha or 'nothing yet'}; "
        f"{state.attempts_for(plan.sha)}/{s.max_attempts} attempts on this commit",
        f"plan:    {plan.reason}",
    ]
    if plan.action is Action.BUILD_AND_DEPLOY:
        job = yaml.safe_dump(build_job(s, plan.sha, plan.attempt), sort_keys=False)
        lines.append("job:\n" + "\n".join("  " + line for line in job.splitlines()))
    if deploy is not None:
        executable = shutil.which("helm")
        helm4 = executable is not None and helm.helm_major(executable) >= 4
        chart = f"<{s.chart_path} of {plan.sha[:7]}>"
        lines.append("helm:    " + helm.command_line(s, chart, helm4))
        values = yaml.safe_dump(deploy.values, sort_keys=False)
        lines.append("values:\n" + "\n".join("  " + line for line in values.splitlines()))
    lines.append("dry run: nothing was written")
    return "\n".join(lines)


def check_cluster(kube: Kube, s: Settings) -> None:
    """Both namespaces and the referenced Secrets: ConfigError for what a run would refuse."""
    for setting, namespace in (("CICD_NS", s.cicd_namespace), ("DEPLOY_NS", s.deploy_namespace)):
        exists = kube.namespace_exists(namespace)
        if exists is None:
            log.warning(
                "cannot tell whether %s %s exists: no permission to read namespaces",
                setting,
                namespace,
            )
        problem = namespace_problem(setting, namespace, exists, s.create_namespace)
        if problem is not None:
            raise problem
    check_secrets(kube, s)
