"""The chart: lint, render, validate against Kubernetes 1.29 and 1.35, schema, per-app content."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ship.shipkit import (
    KUBERNETES_VERSIONS,
    Render,
    assert_one_restricted_cycle_at_a_time,
    container_env,
    kubernetes_validate,
    one,
)
from tests.support import charts
from tests.support.charts import values_file

pytestmark = pytest.mark.helm

VALUES_SETS = ["one-app", "three-apps", "private", "github-app", "fleet"]
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


def helm(helm_bin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_bin, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("values", [None, *VALUES_SETS])
def test_helm_lint_strict(helm_bin: str, values: str | None) -> None:
    extra = ["--values", values_file(values)] if values else []
    result = helm(helm_bin, "lint", "--strict", str(charts.CHART), *extra)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values", VALUES_SETS)
def test_rendered_chart_is_valid_kubernetes(render: Render, values: str, version: str) -> None:
    docs = render(values)
    assert any(d["kind"] == "CronJob" for d in docs)
    result = kubernetes_validate(docs, version)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_app_gets_its_own_cronjob_serviceaccount_and_roles(render: Render) -> None:
    docs = render("three-apps")
    for app, deploy_ns in [("web", "web"), ("api", "api"), ("worker", "web")]:
        name = f"ci-{app}"
        cronjob = one(docs, "CronJob", name)
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name
        one(docs, "ServiceAccount", name)
        assert one(docs, "Role", name)["metadata"]["namespace"] == "cicd"
        assert one(docs, "Role", f"{name}-deploy")["metadata"]["namespace"] == deploy_ns
        # The deploy rules are the deployer's, in the deploy namespace; the runner may only
        # act as it.
        deployer = one(docs, "ServiceAccount", f"{name}-deployer")
        assert deployer["metadata"]["namespace"] == deploy_ns
        binding = one(docs, "RoleBinding", f"{name}-deploy")
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{name}-deployer", "namespace": deploy_ns}
        ]
        act = one(docs, "Role", f"{name}-impersonate")
        assert act["metadata"]["namespace"] == deploy_ns
        rule = {"apiGroups": [""], "resources": ["serviceaccounts"],
                "resourceNames": [f"{name}-deployer"], "verbs": ["impersonate"]}  # fmt: skip
        assert act["rules"] == [rule]
        binding = one(docs, "RoleBinding", f"{name}-impersonate")
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": name, "namespace": "cicd"}
        ]
    assert not [d for d in docs if d["kind"].startswith("Cluster")], "createNamespaceRole: false"


def test_app_settings_reach_the_runner_environment(render: Render) -> None:
    docs = render("three-apps")
    env = {k: v.get("value") for k, v in container_env(one(docs, "CronJob", "ci-api")).items()}
    assert env["REPO"] == "example-org/api.server"
    assert env["BRANCH"] == "release-2"
    assert env["IMAGE"] == "registry.example.com:5000/example-org/api"
    assert env["CHART_PATH"] == "charts/api"
    assert env["RELEASE"] == "api-prod"
    assert env["STATE_CONFIGMAP"] == "ci-runner-api-prod"
    assert env["CICD_NS"] == "cicd"
    assert env["DEPLOY_NS"] == "api"
    assert env["VALUES_FILES"] == "values.yaml,values-prod.yaml"
    # per-app overrides win, shared settings apply otherwise
    assert env["MAX_RETRIES"] == "5"
    assert env["VERIFY_SSL"] == "false"
    assert env["LOG_FORMAT"] == "text"
    assert "KANIKO_IMAGE" not in env, "unset: the runner's own default applies"
    # The build pod's init container runs the runner's own image, as the chart sets it.
    (runner,) = one(docs, "CronJob", "ci-api")["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert env["RUNNER_IMAGE"] == runner["image"]
    assert "GIT_TOKEN" not in env, "a public repository needs no token"
    web = {k: v.get("value") for k, v in container_env(one(docs, "CronJob", "ci-web")).items()}
    assert "MAX_RETRIES" not in web and "VERIFY_SSL" not in web
    assert web["LOG_FORMAT"] == "text"


def test_per_app_schedule_suspend_timezone_and_resources(render: Render) -> None:
    docs = render("three-apps")
    api = one(docs, "CronJob", "ci-api")
    assert api["spec"]["schedule"] == "0 * * * *"
    assert api["spec"]["timeZone"] == "Europe/Berlin"
    (container,) = api["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["memory"] == "1Gi"
    default = yaml.safe_load((charts.CHART / "values.yaml").read_text())["runner"]["resources"]
    merged = container["resources"]["requests"]["memory"]
    assert merged == default["requests"]["memory"], "overrides merge, not replace"
    assert one(docs, "CronJob", "ci-worker")["spec"]["suspend"] is True
    assert one(docs, "CronJob", "ci-web")["spec"]["suspend"] is False
    worker_rules = one(docs, "Role", "ci-worker-deploy")["rules"]
    assert {r for rule in worker_rules for r in rule["resources"]} == {
        "secrets",
        "configmaps",
        "deployments",
        "replicasets",
    }


def test_a_github_app_and_the_notify_url_come_from_secrets(
    render: Render, helm_bin: str, tmp_path: Path
) -> None:
    env = container_env(one(render("github-app"), "CronJob", "ci-billing"))
    for name, key in [
        ("GITHUB_APP_ID", "app-id"),
        ("GITHUB_APP_INSTALLATION_ID", "installation-id"),
        ("GITHUB_APP_PRIVATE_KEY", "private-key"),
    ]:
        assert env[name]["valueFrom"] == {
            "secretKeyRef": {"name": "billing-github-app", "key": key}
        }
    assert env["NOTIFY_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "billing-notify", "key": "url"}
    }
    assert "GIT_TOKEN" not in env
    both = tmp_path / "both.yaml"
    text = Path(values_file("github-app")).read_text()
    both.write_text(
        text.replace("      githubAppSecret:", "      gitTokenSecret: t\n      githubAppSecret:")
    )
    refused = helm(helm_bin, "template", str(charts.CHART), "--values", str(both))
    assert refused.returncode != 0 and "values don't meet the specifications" in refused.stderr


def test_private_repo_token_and_registry_come_from_secrets(render: Render) -> None:
    docs = render("private")
    cronjob = one(docs, "CronJob", "ci-billing")
    env = container_env(cronjob)
    assert env["GIT_TOKEN"] == {
        "name": "GIT_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "billing-git-token", "key": "token"}},
    }
    assert env["GIT_TOKEN_SECRET"]["value"] == "billing-git-token"
    assert env["REGISTRY_SECRET"]["value"] == "registry-push"
    assert env["GITHUB_API_URL"]["value"] == "https://github.example.com/api/v3"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "internal-pull"}]
    assert pod["containers"][0]["image"] == (
        "registry.internal.example/ci-runner@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    assert not [
        e
        for e in env.values()
        if "token" in e["name"].lower() and "value" in e and e["name"] != "GIT_TOKEN_SECRET"
    ], "no token inline"


@pytest.mark.parametrize("values", VALUES_SETS)
def test_runner_pod_meets_the_restricted_profile(render: Render, values: str) -> None:
    for cronjob in [d for d in render(values) if d["kind"] == "CronJob"]:
        fleet = cronjob["metadata"]["labels"]["app.kubernetes.io/component"] == "fleet"
        container = assert_one_restricted_cycle_at_a_time(cronjob, writes=not fleet)
        if fleet:
            assert container["args"] == ["fleet"]
            continue
        assert container["args"] == ["run"]
        env = container_env(cronjob)
        assert env["HOME"]["value"] == "/home/runner"
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            assert env[var]["value"].startswith("/tmp/")


@pytest.mark.parametrize("values", VALUES_SETS)
def test_every_object_has_the_standard_labels(render: Render, values: str) -> None:
    for doc in render(values):
        labels = doc["metadata"].get("labels", {})
        missing = [k for k in STANDARD_LABELS if k not in labels]
        assert not missing, f"{doc['kind']} {doc['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_every_namespaced_object_names_its_namespace(render: Render) -> None:
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    docs = render("one-app", release="x", namespace="tools") + render("fleet")
    for doc in docs:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"].get("namespace"), f"{doc['kind']} {doc['metadata']['name']}"
    assert one(docs, "CronJob", "x-web")["metadata"]["namespace"] == "tools"


def test_no_apps_renders_nothing_and_lints(render: Render) -> None:
    assert render() == []


# --- the values schema refuses bad values, naming the field -----------------------------------

BAD_VALUES = {
    "missing-repo": (
        "apps:\n  - {name: web, image: r.example/web, chartPath: c, deployNamespace: web}\n",
        [r"apps[./]0", "repo", r"required|missing"],
    ),
    "schedule-not-a-string": (
        "apps:\n  - {name: web, repo: o/web, image: r.example/web, chartPath: c,"
        " deployNamespace: web, schedule: 5}\n",
        [r"apps[./]0[./]schedule", r"string"],
    ),
    "unknown-key": (
        "runner:\n  maxRetry: 3\n",
        [r"runner", r"maxRetry", r"not allowed"],
    ),
    "repo-not-owner-name": (
        "apps:\n  - {name: web, repo: just-a-name, image: r.example/web, chartPath: c,"
        " deployNamespace: web}\n",
        [r"apps[./]0[./]repo", r"pattern"],
    ),
    "build-pod-unknown-key": (
        "runner:\n  build: {hostNetwork: true}\n",
        [r"runner[./]build", r"hostNetwork", r"not allowed"],
    ),
    "app-build-pod-wrong-type": (
        "apps:\n  - {name: web, repo: o/web, image: r.example/web, chartPath: c,"
        " deployNamespace: web, build: {tolerations: {key: x}}}\n",
        [r"apps[./]0[./]build[./]tolerations", r"array"],
    ),
    "build-arg-without-value": (
        "apps:\n  - {name: web, repo: o/web, image: r.example/web, chartPath: c,"
        " deployNamespace: web, buildArgs: [JUSTAKEY]}\n",
        [r"apps[./]0[./]buildArgs[./]0", r"pattern"],
    ),
    "cache-ttl-not-a-duration": (
        "runner:\n  buildCacheTtl: 1w\n",
        [r"runner[./]buildCacheTtl", r"pattern"],
    ),
    "wildcard-rule": (
        "runner:\n  deployRules:\n    - {apiGroups: ['*'], resources: [pods], verbs: [get]}\n",
        [r"runner[./]deployRules[./]0[./]apiGroups"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_schema_refuses_bad_values_naming_the_field(
    helm_bin: str, tmp_path: Path, case: str
) -> None:
    text, patterns = BAD_VALUES[case]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = helm(helm_bin, "template", "ci", str(charts.CHART), "--values", str(bad))
    assert result.returncode != 0, f"{case} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr
    for pattern in patterns:
        assert re.search(pattern, result.stderr), f"{pattern!r} not in {result.stderr}"


def test_two_apps_with_one_release_are_refused(helm_bin: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apps:\n"
        "  - {name: a, repo: o/a, image: r.example/a, chartPath: c, deployNamespace: ns-a,"
        " release: shared}\n"
        "  - {name: b, repo: o/b, image: r.example/b, chartPath: c, deployNamespace: ns-b,"
        " release: shared}\n"
    )
    result = helm(helm_bin, "template", "ci", str(charts.CHART), "--values", str(bad))
    assert result.returncode != 0
    assert 'release "shared" is used by another app' in result.stderr


def test_a_deadline_shorter_than_the_runner_timeouts_is_refused(
    helm_bin: str, tmp_path: Path
) -> None:
    """Kubernetes would kill the run mid-build or mid-helm (leaving a pending helm release)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apps:\n"
        "  - {name: a, repo: o/a, image: r.example/a, chartPath: c, deployNamespace: ns-a,"
        " runner: {buildTimeout: 3600}}\n"
    )
    result = helm(helm_bin, "template", "ci", str(charts.CHART), "--values", str(bad))
    assert result.returncode != 0
    assert "apps a: activeDeadlineSeconds (3600) must be above" in result.stderr
    assert "buildTimeout + helmTimeout (3900)" in result.stderr


@pytest.mark.parametrize(
    ("credential", "refusal"),
    [
        ("{tokenSecret: a, appSecret: b}", "set tokenSecret or appSecret, not both"),
        ("{tokenSecret: '', appSecret: ''}", "fleet"),
    ],
)
def test_the_fleet_has_exactly_one_credential(
    helm_bin: str, tmp_path: Path, credential: str, refusal: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apps:\n  - {name: a, repo: o/a, image: r.example/a, chartPath: c, deployNamespace: a}\n"
        f"fleet: {{enabled: true, {credential[1:-1]}}}\n"
    )
    result = helm(helm_bin, "template", "ci", str(charts.CHART), "--values", str(bad))
    assert result.returncode != 0
    assert refusal in result.stderr
