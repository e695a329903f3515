"""``ci-runner check`` asks exactly what the chart and the manifests grant: its one list of
permissions (check.NEEDS) against the rendered Roles."""

from __future__ import annotations

import itertools

import pytest
from ci_runner.kube.probes import CICD, CLUSTER, DEPLOY, NEEDS

from tests.ship.shipkit import Render
from tests.support import rbac
from tests.support.charts import Document

Triple = tuple[str, str, str]


def asked(scope: str, as_deployer: bool = False) -> set[Triple]:
    """(verb, group, resource) of every NEEDS entry of ``scope``, whatever the settings; those
    asked as the deployer, or those asked as the runner itself."""
    return {
        (v, n.group, n.resource)
        for n in NEEDS
        if n.scope == scope and n.as_deployer == as_deployer
        for v in n.verbs
    }


def granted(grants: list[rbac.Grant], namespace: str | None) -> set[Triple]:
    return {
        triple
        for g in grants
        if g.namespace == namespace
        for triple in itertools.product(g.verbs, g.api_groups, g.resources)
    }


@pytest.fixture(scope="module")
def sources(render: Render, manifest_docs: list[Document]) -> list[rbac.Granted]:
    return [
        # An app with every Secret the runner reads or keeps (a public one has none).
        rbac.Granted.from_documents("the chart", render("e2e-app"), "cicd"),
        rbac.Granted.from_documents("the manifests", manifest_docs, "cicd"),
    ]


@pytest.mark.helm
def test_check_asks_exactly_the_cicd_role(sources: list[rbac.Granted]) -> None:
    for source in sources:
        assert asked(CICD) == granted(source.grants, source.cicd_namespace), source.source


@pytest.mark.helm
def test_check_asks_for_helms_release_records_which_the_deploy_role_grants(
    sources: list[rbac.Granted],
) -> None:
    for source in sources:
        deployer = granted(source.deployer_grants, source.deploy_namespace)
        assert asked(DEPLOY, as_deployer=True) <= deployer, source.source


@pytest.mark.helm
def test_check_asks_in_the_deploy_namespace_exactly_the_runners_impersonation(
    sources: list[rbac.Granted],
) -> None:
    for source in sources:
        assert asked(DEPLOY) == granted(source.grants, source.deploy_namespace), source.source
        assert asked(DEPLOY) == {("impersonate", "", "serviceaccounts")}


@pytest.mark.helm
def test_check_asks_cluster_wide_exactly_the_namespace_role(sources: list[rbac.Granted]) -> None:
    for source in sources:
        assert asked(CLUSTER) == granted(source.grants, None), source.source
