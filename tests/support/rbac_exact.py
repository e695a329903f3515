"""RBAC exact in both directions: every grant of the runner was used by some test.

Each end-to-end test ends by checking that the Roles allow what the runner did
(``rbac.refused``); when ``CI_RUNNER_RBAC_USAGE`` names a directory it also writes down what was
used there. After the whole suite, ``python -m tests.support.rbac_exact DIR`` fails on any
grant of the chart or the manifests in the CICD namespace that no test used.
"""

from __future__ import annotations

import itertools
import json
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

from tests.support import charts, rbac

Use = tuple[str, str, str]
"""(verb, API group, resource[/subresource]) in the CICD namespace, or IMPERSONATE."""
IMPERSONATE: Use = ("impersonate", "", "serviceaccounts")
"""helm acted as the deployer: the runner's grant in the deploy namespace was used."""


def record(directory: str, requests: Iterable[object], cicd_namespace: str) -> None:
    """Write the CICD-namespace requests of one test to a file of its own in ``directory``,
    and whether it acted as a deployer (the runner's one grant in the deploy namespace)."""
    used = set()
    for r in requests:
        if getattr(r, "impersonating", ""):
            used.add(IMPERSONATE)
        resource = getattr(r, "resource", None)
        if resource and getattr(r, "namespace", None) == cicd_namespace:
            sub = getattr(r, "subresource", None)
            name = f"{resource}/{sub}" if sub else resource
            used.add((getattr(r, "verb", ""), getattr(r, "api_group", ""), name))
    path = Path(directory) / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(sorted(used)))


def unused(granted: rbac.Granted, used: set[Use]) -> list[str]:
    """The grants of the runner (in its CICD namespace, and its impersonation of the deployer
    in the deploy namespace) that nothing in ``used`` needed. The deployer's own grants are the
    app's deploy rules, a choice of the platform team, not checked here."""
    lines = []
    for grant in granted.grants:
        if grant.namespace not in (granted.cicd_namespace, granted.deploy_namespace):
            continue
        for verb, group, resource in itertools.product(
            grant.verbs, grant.api_groups, grant.resources
        ):
            if (verb, group, resource) not in used:
                lines.append(f"{granted.source} grants, and no test used: {verb} "
                             f"{group or 'core'}/{resource}")  # fmt: skip
    return sorted(set(lines))


def main(directory: str) -> int:
    """Print the unused grants; 1 when there are any."""
    used: set[Use] = set()
    files = list(Path(directory).glob("*.json"))
    for path in files:
        used |= {(v, g, r) for v, g, r in json.loads(path.read_text())}
    sources = [
        rbac.Granted.from_documents(
            "the chart", charts.render_chart([charts.values_file("e2e-app")], namespace="cicd"),
            "cicd",
        ),
        rbac.Granted.from_documents("the manifests", charts.render_manifests(), "cicd"),
    ]  # fmt: skip
    lines = [line for granted in sources for line in unused(granted, used)]
    print(f"RBAC: {len(files)} end-to-end tests recorded what they used in the CICD namespace")
    for line in lines:
        print(line)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
