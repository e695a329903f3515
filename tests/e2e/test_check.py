"""``ci-runner check`` end to end, as the chart's CronJob would run it: the chart installed with
real helm, the CronJob's own settings, the chart's ServiceAccount (a TokenRequest's token), the
README's example app in the GitHub fake, helm on PATH. Every item green; then each thing a
newcomer gets wrong, with its ✘ line and exit code. Runs on a real cluster too
(CI_RUNNER_TEST_KUBECONFIG), except where it reads the emulator's request log."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e.appkit import Run
from tests.ship.shipkit import container_env
from tests.support import charts
from tests.support.example import CHART_PATH, example_files
from tests.support.github_fake import GitHubFake
from tests.support.identity import service_account_kubeconfig
from tests.support.kube_target import KubeTarget

pytestmark = pytest.mark.helm

REPO = "acme/hello"
TOKEN = "good-token-4a7f"
ACCOUNT = "ci-demo"  # the chart's ServiceAccount (and CronJob) of app "demo", release "ci"


@dataclass
class Installed:
    """The chart installed for one app, and ``ci-runner check`` with its CronJob's settings."""

    kube: KubeTarget
    github: GitHubFake
    kubectl_bin: str
    env: dict[str, str]
    head: str = ""
    """The head commit of the example's repository."""
    notes: str = ""
    """What helm printed when it installed the chart (NOTES.txt)."""

    @property
    def cicd(self) -> str:
        return self.kube.namespace

    @property
    def deploy_ns(self) -> str:
        return f"{self.kube.namespace}-app"

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        """kubectl as the admin."""
        return subprocess.run(
            [self.kubectl_bin, *args], env=self.kube.env(), input=stdin, text=True,
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip

    def check(self, *args: str, **env: str) -> Run:
        done = subprocess.run(
            [sys.executable, "-m", "ci_runner", "check", *args],
            env={**self.env, **env}, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        return Run(done.returncode, done.stdout, done.stderr)

    def lines(self, run: Run) -> dict[str, str]:
        """The report's ✔/✘ lines by item."""
        found = {}
        for line in run.stdout.splitlines():
            if line[:2] in ("✔ ", "✘ "):
                item, _, message = line[2:].partition(": ")
                found[item] = line[0] + " " + message
        return found


def _cronjob_settings(installed: Installed) -> dict[str, str]:
    """The runner's environment as the chart's CronJob gives it, Secrets resolved."""
    cronjob = json.loads(installed.kubectl("get", "cronjob", ACCOUNT, "-n", installed.cicd,
                                           "-o", "json"))  # fmt: skip
    settings = {}
    for name, entry in container_env(cronjob).items():
        if "value" in entry:
            settings[name] = str(entry["value"])
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            secret = json.loads(installed.kubectl("get", "secret", ref["name"], "-n",
                                                  installed.cicd, "-o", "json"))  # fmt: skip
            settings[name] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return settings


@pytest.fixture(params=[True, False], ids=["namespace-role", "no-cluster-role"])
def installed(
    request: pytest.FixtureRequest,
    kube: KubeTarget,
    github: GitHubFake,
    helm_bin: str,
    kubectl_bin: str,
    tools_path: str,
    tmp_path: Path,
) -> Iterator[Installed]:
    """The README's order: namespaces, Secrets, then the chart (with or without its
    ClusterRole for namespaces); the example app in a private repository."""
    github.create_repo(REPO, private=True)
    head = github.push(REPO, "main", example_files(), message="the example app")
    github.require_token(TOKEN)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": tools_path, "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[var] = str(home / var.lower())
    it = Installed(kube, github, kubectl_bin, env, head)
    it.kubectl("create", "namespace", it.deploy_ns)
    try:
        it.kubectl("create", "secret", "generic", "demo-git-token", "-n", it.cicd,
                   f"--from-literal=token={TOKEN}")  # fmt: skip
        it.kubectl("create", "secret", "docker-registry", "registry-push", "-n", it.cicd,
                   "--docker-server=registry.example.com", "--docker-username=ci",
                   "--docker-password=fake-push-secret")  # fmt: skip
        values = tmp_path / "values.yaml"
        values.write_text(json.dumps({
            "runner": {"createNamespaceRole": request.param, "githubApiUrl": github.url},
            "apps": [{"name": "demo", "repo": REPO, "image": "registry.example.com/acme/hello",
                      "chartPath": CHART_PATH, "release": "hello",
                      "deployNamespace": it.deploy_ns,
                      "secrets": {"gitTokenSecret": "demo-git-token",
                                  "registrySecret": "registry-push"}}],
        }))  # fmt: skip
        it.notes = subprocess.run(
            [helm_bin, "upgrade", "--install", "ci", str(charts.CHART), "-n", it.cicd,
             "-f", str(values)],
            env={**kube.env(), **env}, capture_output=True, text=True, check=True, timeout=180,
        ).stdout  # fmt: skip
        identity = service_account_kubeconfig(kube, kubectl_bin, it.cicd, ACCOUNT,
                                               tmp_path / "runner")  # fmt: skip
        it.env.update(_cronjob_settings(it), KUBECONFIG=identity)
        yield it
    finally:
        if kube.emulator is None:  # a real cluster: what the test created outside its namespace
            subprocess.run([kubectl_bin, "delete", "namespace", it.deploy_ns, "--wait=false"],
                           env=kube.env(), capture_output=True, check=False)  # fmt: skip
            subprocess.run([helm_bin, "uninstall", "ci", "-n", it.cicd], env={**kube.env(), **env},
                           capture_output=True, check=False)  # fmt: skip


def test_all_green_as_the_charts_service_account(installed: Installed) -> None:
    done = installed.check()

    assert done.code == 0, done.output
    lines = installed.lines(done)
    assert all(line.startswith("✔") for line in lines.values()), done.stdout
    cicd, deploy = installed.cicd, installed.deploy_ns
    assert lines[f"permissions in CICD_NS {cicd}"].startswith("✔ all ")
    # The runner's one grant there: to act as the deployer, which keeps helm's records.
    assert lines[f"permissions in DEPLOY_NS {deploy}"] == "✔ all 1 granted"
    assert lines[f"deployer {ACCOUNT}-deployer in DEPLOY_NS {deploy}"] == (
        f"✔ helm acts as system:serviceaccount:{deploy}:{ACCOUNT}-deployer (impersonated); "
        "as it, all 5 granted"
    )
    assert lines[f"Secrets in {cicd}"] == (
        "✔ REGISTRY_SECRET registry-push has key .dockerconfigjson; "
        "GIT_TOKEN_SECRET demo-git-token has key token"
    )
    assert lines["repository acme/hello"] == "✔ visible (private)"
    assert lines[f"chart {CHART_PATH} at {installed.head[:7]}"] == (
        "✔ helm lint passed with the values a run would deploy"
    )
    assert "GIT_TOKEN accepted" in lines["GitHub credentials"]
    if installed.env["CREATE_NAMESPACE"] == "true":
        assert lines["permissions cluster-wide"] == "✔ all 2 granted"
        assert lines[f"DEPLOY_NS {deploy}"].startswith("✔ exists")
    else:  # no ClusterRole: namespaces cannot be read, and nothing is asked cluster-wide
        assert "permissions cluster-wide" not in lines
        assert lines[f"DEPLOY_NS {deploy}"].startswith("✔ cannot be read")
    assert TOKEN not in done.output


def test_notes_say_who_creates_the_deploy_namespace(installed: Installed) -> None:
    notes = " ".join(installed.notes.split())
    assert "or helm creates them" not in notes
    assert "Each deploy namespace must exist before this chart is installed" in notes
    if installed.env["CREATE_NAMESPACE"] == "true":
        assert "may get and create namespaces only to create an app's deploy namespace" in notes
    else:
        assert "CREATE_NAMESPACE=false and may not read or create namespaces" in notes
    assert "`ci-runner check`" in notes


def test_check_writes_nothing_and_answers_json(installed: Installed) -> None:
    emulator = installed.kube.emulator
    if emulator is None:
        pytest.skip("reads the emulator's request log")
    emulator.clear_requests()

    done = installed.check("--output", "json")

    assert done.code == 0, done.output
    report = json.loads(done.stdout)
    assert {entry["ok"] for entry in report} == {True}
    assert {entry["exitCode"] for entry in report} == {0}
    assert "Kubernetes API" in [entry["item"] for entry in report]
    ours = [r for r in emulator.requests if r.user_agent.startswith("ci-runner/")]
    writes = [r for r in ours if r.method != "GET" and not r.path.endswith("accessreviews")]
    assert ours and not writes, writes


def take_lease_update_from_the_role(installed: Installed) -> None:
    """Patch the chart's CICD Role so that it no longer grants `update` on leases."""
    role = json.loads(installed.kubectl("get", "role", ACCOUNT, "-n", installed.cicd,
                                        "-o", "json"))  # fmt: skip
    (leases,) = [i for i, r in enumerate(role["rules"]) if r["resources"] == ["leases"]]
    patch = [{"op": "replace", "path": f"/rules/{leases}/verbs", "value": ["get", "create"]}]
    installed.kubectl("patch", "role", ACCOUNT, "-n", installed.cicd, "--type=json",
                      "-p", json.dumps(patch))  # fmt: skip


def test_a_permission_taken_from_the_role_is_refused(installed: Installed) -> None:
    take_lease_update_from_the_role(installed)

    done = installed.check()

    assert done.code == 2, done.output
    line = installed.lines(done)[f"permissions in CICD_NS {installed.cicd}"]
    assert line.startswith("✘ refused: update leases.coordination.k8s.io (the run's Lease); ")
    assert "charts/ci-runner/templates/rbac.yaml" in line
    assert installed.lines(done)[f"permissions in DEPLOY_NS {installed.deploy_ns}"][0] == "✔"


def test_a_missing_secret(installed: Installed) -> None:
    installed.kubectl("delete", "secret", "registry-push", "-n", installed.cicd)
    done = installed.check()
    assert done.code == 2, done.output
    assert installed.lines(done)[f"Secrets in {installed.cicd}"].startswith(
        f"✘ REGISTRY_SECRET Secret 'registry-push' in namespace '{installed.cicd}' does not exist"
    )


def test_a_missing_deploy_namespace(installed: Installed) -> None:
    gone = f"{installed.cicd}-gone"
    done = installed.check(DEPLOY_NS=gone, CREATE_NAMESPACE="false")
    assert done.code == 2, done.output
    lines = installed.lines(done)
    if installed.env["CREATE_NAMESPACE"] == "true":  # the runner may read namespaces
        assert lines[f"DEPLOY_NS {gone}"] == (
            f"✘ DEPLOY_NS namespace '{gone}' does not exist: create it with "
            f"`kubectl create namespace {gone}`"
        )
    # helm may not act as a deployer where no Role of the chart is
    assert lines[f"permissions in DEPLOY_NS {gone}"].startswith(
        f"✘ refused: impersonate serviceaccounts '{ACCOUNT}-deployer' (helm acting as DEPLOYER)"
    )
    assert lines[f"deployer {ACCOUNT}-deployer in DEPLOY_NS {gone}"].startswith(
        "✘ this identity may not act as it: grant impersonate on serviceaccounts named "
        f"{ACCOUNT}-deployer in {gone}"
    )


def test_a_deployer_without_its_role_is_refused_as_itself(installed: Installed) -> None:
    """The impersonation works, but the deployer may not keep helm's records: the line says
    what the deployer is refused, asked as the deployer."""
    installed.kubectl("delete", "rolebinding", f"{ACCOUNT}-deploy", "-n", installed.deploy_ns)
    done = installed.check()
    assert done.code == 2, done.output
    lines = installed.lines(done)
    assert lines[f"permissions in DEPLOY_NS {installed.deploy_ns}"] == "✔ all 1 granted"
    line = lines[f"deployer {ACCOUNT}-deployer in DEPLOY_NS {installed.deploy_ns}"]
    assert line.startswith(
        f"✘ as system:serviceaccount:{installed.deploy_ns}:{ACCOUNT}-deployer, refused: "
        "get,list,create,update,delete secrets (helm's release records)"
    ), line


def test_no_chart_at_chart_path_and_a_chart_helm_lint_refuses(installed: Installed) -> None:
    missing = installed.check(CHART_PATH="deploy/chart")
    assert missing.code == 2, missing.output
    sha = installed.head
    assert installed.lines(missing)[f"chart deploy/chart at {sha[:7]}"].startswith(
        f"✘ CHART_PATH 'deploy/chart' does not exist in {REPO}@{sha[:7]}"
    )

    broken = "{{ .Values.nothing.here }}\n"
    sha = installed.github.push(REPO, "main", {f"{CHART_PATH}/templates/broken.yaml": broken})
    refused = installed.check()
    assert refused.code == 2, refused.output
    line = installed.lines(refused)[f"chart {CHART_PATH} at {sha[:7]}"]
    assert line.startswith("✘ helm lint failed: ") and "nil pointer" in line


def test_a_token_github_refuses(installed: Installed) -> None:
    done = installed.check(GIT_TOKEN="wrong-token-9c1e")
    assert done.code == 2, done.output
    line = installed.lines(done)["GitHub credentials"]
    assert line.startswith("✘ GitHub refused the credentials while reading the rate limit (401")
    assert "repository acme/hello" not in installed.lines(done)
    assert "wrong-token-9c1e" not in done.output


def test_require_checks_reads_check_runs_and_statuses_or_names_the_permission(
    installed: Installed,
) -> None:
    installed.github.add_check_run(REPO, installed.head, "test")
    installed.github.add_status(REPO, installed.head, "ci/lint", "pending")
    done = installed.check(REQUIRE_CHECKS="test,ci/lint")
    assert done.code == 0, done.output
    line = installed.lines(done)["REQUIRE_CHECKS"]
    assert line == (
        f"✔ check runs and statuses readable; on {installed.head[:7]}: ci/lint, test"
    ), line
    installed.github.refuse("statuses")
    refused = installed.check(REQUIRE_CHECKS="test")
    assert refused.code == 2, refused.output
    line = installed.lines(refused)["REQUIRE_CHECKS"]
    assert line.startswith("✘ GitHub refused reading the commit statuses of"), line
    assert "statuses: read" in line


def test_github_down_or_unreachable_is_exit_3(installed: Installed) -> None:
    installed.github.fail_next("GET", r"^/rate_limit$", 503)
    down = installed.check()
    assert down.code == 3, down.output
    assert installed.lines(down)["GitHub credentials"].startswith("✘ GitHub answered 503")

    unreachable = installed.check(GITHUB_API_URL="http://127.0.0.1:9")
    assert unreachable.code == 3, unreachable.output
    assert "GitHub is unreachable" in installed.lines(unreachable)["GitHub credentials"]


def test_kubernetes_api_unreachable_is_exit_3(installed: Installed, tmp_path: Path) -> None:
    config = yaml.safe_load(Path(installed.env["KUBECONFIG"]).read_text())
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"
    nowhere = tmp_path / "nowhere"
    nowhere.write_text(yaml.safe_dump(config))
    done = installed.check(KUBECONFIG=str(nowhere))
    assert done.code == 3, done.output
    lines = installed.lines(done)
    assert lines["Kubernetes API"].startswith("✘ Kubernetes API unreachable")
    assert f"Secrets in {installed.cicd}" not in lines  # skipped
    assert lines["repository acme/hello"] == "✔ visible (private)"  # GitHub still checked


def test_the_readmes_runner_kubeconfig_asks_as_the_service_account(
    installed: Installed, tmp_path: Path
) -> None:
    # README "Check as the runner", run as written (the names are this test's).
    readme = (charts.ROOT / "README.md").read_text()
    section = readme[readme.index("### Check as the runner") :]
    block = section[section.index("```sh\n") + 6 : section.index("```\n", section.index("```sh"))]
    script = block.replace("ci-runner-hello", ACCOUNT).replace("-n cicd", f"-n {installed.cicd}")
    script = script.replace(" ci-runner check", f" {sys.executable} -m ci_runner check")
    assert script.count("ci_runner check") == 1
    take_lease_update_from_the_role(installed)

    env = {**installed.env, "KUBECONFIG": installed.kube.kubeconfig}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip

    # As the ServiceAccount: the permission taken away is refused (the admin has them all).
    assert done.returncode == 2, done.stdout + done.stderr
    assert "✘ permissions in CICD_NS" in done.stdout
    assert "update leases.coordination.k8s.io" in done.stdout


def test_a_cicd_namespace_that_refuses_kaniko(installed: Installed) -> None:
    installed.kubectl("label", "namespace", installed.cicd, "--overwrite",
                      "pod-security.kubernetes.io/enforce=restricted")  # fmt: skip
    done = installed.check()
    line = installed.lines(done)[f"CICD_NS {installed.cicd}"]
    if installed.env["CREATE_NAMESPACE"] == "false":  # the runner may not read namespaces
        assert line.startswith("✔ cannot be read"), done.stdout
        return
    assert done.code == 2, done.output
    assert line.startswith("✘ Pod Security level 'restricted' refuses the Kaniko build pod")
    assert "pod-security.kubernetes.io/enforce=baseline" in line
