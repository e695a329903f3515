"""What a real API server decides for issue 19's operator work: Pod Security admission of
Kaniko in a CICD namespace the runner created, and a chart rendered before the build with the
server's own version."""

from __future__ import annotations

import json
import uuid

import yaml

from tests.e2e.appkit import APP_FILES, IMAGE, App
from tests.e2e.real.realkit import DIGEST, fate, kubectl, require_kwok, require_real

BROKEN = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-broken}
data: {x: {{ .Values.no.such.value | quote }}}
"""


def test_a_cicd_namespace_the_runner_creates_admits_kaniko(app: App) -> None:
    """Created labelled baseline: the real Pod Security admission takes Kaniko's root pod."""
    require_kwok(app)
    cicd = f"cicd-{uuid.uuid4().hex[:8]}"
    try:
        done = app.run(CICD_NS=cicd, BUILD_POD=fate("digest"))
        assert done.code == 0, done.output
        created = json.loads(kubectl(app, "get", "namespace", cicd, "-o", "json").stdout)
        assert created["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
        assert DIGEST in app.deployed_image()
    finally:
        kubectl(app, "delete", "namespace", cicd, "--wait=false", check=False)


def test_a_chart_is_rendered_before_the_build_with_the_servers_version(app: App) -> None:
    """A chart that requires the server's own version renders (helm template is given the
    server's --kube-version, not helm's default), and one that cannot render costs no build."""
    require_real(app)
    version = json.loads(kubectl(app, "version", "-o", "json").stdout)["serverVersion"]
    chart = yaml.safe_load(APP_FILES["deploy/chart/Chart.yaml"])
    chart["kubeVersion"] = f">={version['gitVersion'].lstrip('v')}-0"
    app.push({"deploy/chart/Chart.yaml": yaml.safe_dump(chart)})
    dry = app.run("--dry-run")
    assert dry.code == 0, dry.output
    assert "helm template renders it with these values" in dry.stdout

    sha = app.push({"deploy/chart/templates/broken.yaml": BROKEN})
    done = app.run()
    assert done.code == 1, done.output
    assert "helm cannot render the chart deploy/chart of" in done.stderr
    assert app.build_jobs() == []
    assert (app.status()["pendingSha"], app.status()["attempts"]) == (sha, 1)
    assert IMAGE  # the image was never built: no Job above
