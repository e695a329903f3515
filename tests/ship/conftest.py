"""Fixtures of the shipping tests: the chart rendered with helm, the manifests with kubectl."""

from __future__ import annotations

import pytest

from tests.ship.shipkit import Render
from tests.support import charts
from tests.support.charts import Document, values_file


@pytest.fixture(scope="session")
def render(helm_bin: str) -> Render:
    """``render("one-app", "private", release=..., namespace=...)``: the chart's documents."""

    def _render(*names: str, release: str = "ci", namespace: str = "cicd") -> list[Document]:
        files = [values_file(n) for n in names]
        return charts.render_chart(files, release=release, namespace=namespace, helm=helm_bin)

    return _render


@pytest.fixture(scope="session")
def manifest_docs(kubectl_bin: str) -> list[Document]:
    """``kubectl kustomize manifests/``, as documents."""
    return charts.render_manifests(kubectl=kubectl_bin)
