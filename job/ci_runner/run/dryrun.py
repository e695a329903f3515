"""What ``ci-runner run --dry-run`` prints: in plain words and values, what a run would do with
the head (its namespaces, the build Job, the image reference and the values helm would get,
the helm command), after checking what a run would refuse."""

from __future__ import annotations

import logging
import shutil
from typing import Any

import yaml

from ..config import Settings
from ..helm import deploy as helm
from ..helm.deploy import Deploy
from ..kube.build_job import build_job, check_secrets
from ..kube.client import Kube, namespace_problem
from ..kube.state import State
from .plan import Action, Plan

log = logging.getLogger(__name__)

PUSHED_DIGEST = "sha256:<the digest the build pushes>"
"""Where the image's digest goes in what a dry run prints before any build."""


class _Plain(yaml.SafeDumper):
    """YAML for people: a value that appears twice is written twice, never as an anchor and
    an alias (``&id001``/``*id001``), which PyYAML writes for an object it meets again."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def plain_yaml(value: object) -> str:
    return yaml.dump(value, Dumper=_Plain, sort_keys=False, default_flow_style=False)


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def describe(
    s: Settings,
    state: State,
    plan: Plan,
    deploy: Deploy | None,
    namespaces: dict[str, bool | None] | None = None,
    rendered: bool | None = None,
) -> str:
    """The --dry-run report: what a run would do, with the very values a run would deploy
    (``deploy`` is the checked chart of the head, None when nothing would be done;
    ``namespaces``: CICD_NS and DEPLOY_NS, whether each exists; ``rendered``: whether helm
    template rendered the chart, None when it could not be asked)."""
    sha = plan.sha
    lines = [
        f"commit:  {sha} ({s.repo} branch {s.branch})",
        f"state:   deployed {state.deployed_sha or 'nothing yet'}; "
        f"{state.attempts_for(sha)}/{s.max_attempts} attempts on this commit",
        f"plan:    {plan.reason}",
    ]
    for setting, namespace in (("CICD_NS", s.cicd_namespace), ("DEPLOY_NS", s.deploy_namespace)):
        exists = (namespaces or {}).get(setting)
        if exists is False:
            labelled = (
                ", labelled pod-security.kubernetes.io/enforce=baseline"
                if setting == "CICD_NS"
                else ""
            )
            said = f"does not exist: the run would create it{labelled}"
        else:
            said = "exists" if exists else "not known (no permission to read namespaces)"
        lines.append(f"{setting}: {namespace} {said}")
    if plan.action is Action.BUILD_AND_DEPLOY:
        job = build_job(s, sha, plan.attempt)
        lines.append(
            f"build:   Job {job['metadata']['name']} in {s.cicd_namespace} runs {s.kaniko_image}, "
            f"which builds {s.dockerfile} of {s.repo}@{sha[:7]} and pushes "
            f"{s.image}:{sha} and {s.image}:{s.latest_tag}, within {s.build_timeout}s"
        )
        lines.append("job:\n" + _indented(plain_yaml(job)))
    elif plan.action is Action.DEPLOY:
        lines.append(f"build:   none: the image of {sha[:7]} was pushed by an earlier attempt")
    if deploy is not None:
        digest = plan.digest or PUSHED_DIGEST
        if s.deploy_by_digest:
            lines.append(f"image:   {s.image}:{sha}@{digest} (DEPLOY_BY_DIGEST: the pushed digest)")
        else:
            lines.append(f"image:   {s.image}:{sha} (by tag: DEPLOY_BY_DIGEST=false)")
        chart = f"{s.chart_path} of {sha[:7]}"
        if rendered:
            lines.append(f"chart:   {chart}: helm template renders it with these values")
        elif rendered is None:
            lines.append(f"chart:   {chart}: not rendered (no usable helm here)")
        executable = shutil.which("helm")
        helm4 = executable is not None and helm.helm_major(executable) >= 4
        lines.append("helm:    " + helm.command_line(s, f"<{chart}>", helm4))
        values = deploy.pinned(sha, digest).values
        lines.append("values:  (on helm's stdin)\n" + _indented(plain_yaml(values)))
    lines.append("dry run: nothing was written")
    return "\n".join(lines)


def check_cluster(kube: Kube, s: Settings) -> dict[str, bool | None]:
    """Both namespaces and the referenced Secrets: ConfigError for what a run would refuse.
    Whether each namespace exists (None: no permission to tell)."""
    found: dict[str, bool | None] = {}
    for setting, namespace in (("CICD_NS", s.cicd_namespace), ("DEPLOY_NS", s.deploy_namespace)):
        exists = found[setting] = kube.namespace_exists(namespace)
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
    return found
