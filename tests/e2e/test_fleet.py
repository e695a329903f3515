"""``ci-runner fleet`` end to end, on the emulator and on a real control plane alike: the product
chart installed in fleet mode for four apps, the fleet run as its own ServiceAccount with the
environment of its CronJob, and the Job it creates run as the app's ServiceAccount."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_runner.config import Settings, table

from tests.e2e.appkit import APP_FILES, IMAGE, Run
from tests.support import charts
from tests.support.github_fake import GitHubFake
from tests.support.identity import service_account_kubeconfig
from tests.support.kube_target import KubeTarget

pytestmark = pytest.mark.helm

FLEET_TOKEN = "fleet-read-only-token-5b21"
SETTINGS = {spec.env for _, spec in table(Settings)}


@dataclass
class Fleet:
    """The chart installed in fleet mode: apps shop and cart (deployed), gone (a repository the
    fleet's token cannot see) and bad (a setting that does not validate)."""

    kube: KubeTarget
    github: GitHubFake
    kubectl_bin: str
    env: dict[str, str]
    tmp: Path
    heads: dict[str, str]

    @property
    def cicd(self) -> str:
        return self.kube.namespace

    @property
    def deploy_ns(self) -> str:
        return f"{self.cicd}-app"

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl_bin, *args], env=self.kube.env(), capture_output=True, text=True,
            check=check, timeout=120,
        )  # fmt: skip

    def get(self, kind: str, name: str = "", *selector: str) -> Any:
        args = ["get", kind, *([name] if name else []), "-n", self.cicd, "-o", "json", *selector]
        return json.loads(self.kubectl(*args).stdout)

    def container_env(self, obj: dict[str, Any]) -> dict[str, str]:
        spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
        (container,) = spec["template"]["spec"]["containers"]
        return {e["name"]: e["value"] for e in container["env"] if "value" in e}

    def as_account(self, name: str) -> str:
        return service_account_kubeconfig(
            self.kube, self.kubectl_bin, self.cicd, name, self.tmp / f"kubeconfig-{name}"
        )

    def fleet(self, **more: str) -> Run:
        """``ci-runner fleet`` with its CronJob's environment, as its ServiceAccount."""
        env = {**self.env, **self.container_env(self.get("cronjob", "ci-fleet"))}
        env = {**env, "LOG_FORMAT": "text", **more}  # the chart's is json; text reads easier
        env["KUBECONFIG"] = self.as_account("ci-fleet")
        done = subprocess.run(
            [sys.executable, "-m", "ci_runner", "fleet"], env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        return Run(done.returncode, done.stdout, done.stderr)

    def run_job(self, job: dict[str, Any], account: str) -> Run:
        """The runner with the settings of ``job``'s pod (not its pod's paths), as ``account``."""
        settings = {k: v for k, v in self.container_env(job).items() if k in SETTINGS}
        env = {**self.env, **settings, "KUBECONFIG": self.as_account(account)}
        if self.kube.emulator is None:  # a real cluster cannot reach the fake for Kaniko's clone
            env["KANIKO_IMAGE"] = os.environ.get("CI_RUNNER_TEST_BUILD_IMAGE", "hello-world")
        done = subprocess.run(
            [sys.executable, "-m", "ci_runner", "run"], env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        return Run(done.returncode, done.stdout, done.stderr)

    def jobs_of(self, cronjob: str) -> list[dict[str, Any]]:
        found = self.get("jobs", "", "-l", "ci-runner.io/app")["items"]
        return [
            j for j in found
            if any(o["name"] == cronjob for o in j["metadata"].get("ownerReferences") or [])
        ]  # fmt: skip

    def events_of(self, cronjob: str) -> list[dict[str, Any]]:
        found = self.get("events")["items"]
        return [e for e in found if e["involvedObject"].get("name") == cronjob]

    def state(self, release: str) -> dict[str, str]:
        data: dict[str, str] = self.get("configmap", f"ci-runner-{release}").get("data") or {}
        return data


def state_configmap(namespace: str, release: str, sha: str) -> dict[str, Any]:
    """A release's state as a run leaves it after deploying ``sha``."""
    labels = {"app.kubernetes.io/managed-by": "ci-runner", "ci-runner.io/release": release}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"ci-runner-{release}", "namespace": namespace, "labels": labels},
        "data": {"lastDeployedSha": sha},
    }


def with_token(it: Fleet) -> dict[str, Any]:
    """The fleet's credential as a token Secret: the chart's ``fleet`` values for it."""
    it.kubectl("create", "secret", "generic", "fleet-github-token", "-n", it.cicd,
               f"--from-literal=token={FLEET_TOKEN}")  # fmt: skip
    return {"tokenSecret": "fleet-github-token"}


@pytest.fixture
def fleet(
    kube: KubeTarget,
    github: GitHubFake,
    helm_bin: str,
    kubectl_bin: str,
    tools_path: str,
    tmp_path: Path,
) -> Iterator[Fleet]:
    with installed(kube, github, helm_bin, kubectl_bin, tools_path, tmp_path, with_token) as it:
        yield it


@contextmanager
def installed(
    kube: KubeTarget,
    github: GitHubFake,
    helm_bin: str,
    kubectl_bin: str,
    tools_path: str,
    tmp_path: Path,
    credential: Callable[[Fleet], dict[str, Any]],
) -> Iterator[Fleet]:
    """The chart in fleet mode, with the fleet's ``credential`` (made in the cluster; its
    ``fleet`` values returned)."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    env = {"PATH": tools_path, "HOME": str(home), "TMPDIR": str(home / "tmp"),
           "PYTHONPATH": os.pathsep.join(sys.path), "API_TIMEOUT": "5"}  # fmt: skip
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[var] = str(home / var.lower())
    heads = {}
    for name in ("shop", "cart", "bad"):
        github.create_repo(f"acme/{name}")
        heads[name] = github.push(f"acme/{name}", "main", APP_FILES, message="first")
    it = Fleet(kube, github, kubectl_bin, env, tmp_path, heads)
    it.kubectl("create", "namespace", it.deploy_ns)
    try:
        credentials = credential(it)
        for release in ("shop", "cart"):
            path = tmp_path / f"state-{release}.json"
            path.write_text(json.dumps(state_configmap(it.cicd, release, heads[release])))
            it.kubectl("create", "-f", str(path))

        def app(name: str, **more: Any) -> dict[str, Any]:
            where = {"chartPath": "deploy/chart", "deployNamespace": it.deploy_ns}
            return {"name": name, "repo": f"acme/{name}", "image": IMAGE, **where, **more}

        values = {
            "runner": {"createNamespaceRole": False, "githubApiUrl": github.url},
            "apps": [
                app("shop"),
                app("cart"),
                app("gone"),
                app("bad", runner={"extraEnv": {"HISTORY_LIMIT": "none"}}),
            ],
            "fleet": {
                "enabled": True,
                **credentials,
                "admissionPolicy": kube.emulator is None,  # the emulator has no admission
            },
        }
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        subprocess.run(
            [helm_bin, "upgrade",
             "--install", "ci", str(charts.CHART), "-n", it.cicd, "-f", str(path)],
            env={**kube.env(), **env}, capture_output=True, text=True, check=True, timeout=180,
        )  # fmt: skip
        yield it
    finally:
        if kube.emulator is None:
            it.kubectl("delete", "namespace", it.deploy_ns, "--wait=false", check=False)


def test_one_changed_app_gets_one_job_whose_run_deploys(fleet: Fleet) -> None:
    first = fleet.fleet()
    assert first.code == 0, first.output
    (summary,) = first.stdout.splitlines()
    assert summary.startswith("fleet: 4 app(s); 0 Job(s) created; 0 with a Job running; 2 idle")
    assert "2 with problems (ci-bad, ci-gone)" in summary
    # one app's trouble is that app's: an Event on its CronJob, once
    (bad,) = fleet.events_of("ci-bad")
    assert bad["reason"] == "FleetBadSettings" and "HISTORY_LIMIT" in bad["message"]
    (gone,) = fleet.events_of("ci-gone")
    assert gone["reason"] == "FleetHeadUnknown" and "acme/gone" in gone["message"]
    assert FLEET_TOKEN not in first.output

    idle = fleet.fleet()  # the ETags kept: 304s, free
    assert idle.code == 0, idle.output
    assert "GitHub: 3 request(s), 1 billable" in idle.stdout  # gone's 404 counts
    assert len(fleet.events_of("ci-gone")) == 1  # not one Event per run

    head = fleet.github.push("acme/shop", "main", {"README.md": "next"}, message="next")
    changed = fleet.fleet()
    assert changed.code == 0, changed.output
    line, summary = changed.stdout.splitlines()
    assert line.startswith("ci-shop: created Job ci-shop-f") and head[:7] in line
    assert "1 Job(s) created" in summary and "1 idle" in summary
    (job,) = fleet.jobs_of("ci-shop")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("CronJob", "ci-shop", True)
    cronjob = fleet.get("cronjob", "ci-shop")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "ci-shop"
    assert fleet.container_env(job) == fleet.container_env(cronjob)
    assert fleet.jobs_of("ci-cart") == []

    deployed = fleet.run_job(job, "ci-shop")
    assert deployed.code == 0, deployed.output
    assert fleet.state("shop")["lastDeployedSha"] == head

    after = fleet.fleet()
    assert after.code == 0, after.output
    assert after.stdout.startswith("fleet: 4 app(s); 0 Job(s) created")


def test_an_app_with_a_job_running_gets_no_second(fleet: Fleet) -> None:
    fleet.github.push("acme/shop", "main", {"README.md": "next"}, message="next")
    # A Job of the app that has not finished: held by the emulator; suspended on a real cluster,
    # where kwok would complete it.
    manual = fleet.kubectl("create", "job", "ci-shop-manual", "--from=cronjob/ci-shop",
                           "-n", fleet.cicd, "--dry-run=client", "-o", "json").stdout  # fmt: skip
    body = json.loads(manual)
    if fleet.kube.emulator is not None:
        fleet.kube.emulator.jobs.behave("hold", name="ci-shop-manual")
    else:
        body["spec"]["suspend"] = True
    path = fleet.tmp / "manual.json"
    path.write_text(json.dumps(body))
    fleet.kubectl("create", "-f", str(path))

    done = fleet.fleet()
    assert done.code == 0, done.output
    assert done.stdout.startswith("fleet: 4 app(s); 0 Job(s) created; 1 with a Job running")
    assert [j["metadata"]["name"] for j in fleet.jobs_of("ci-shop")] == ["ci-shop-manual"]


def test_apps_github_asked_to_wait_for_are_asked_first_by_the_next_run(fleet: Fleet) -> None:
    """A secondary rate limit (403 with retry-after) ends the round: the apps not asked are
    named in the summary and asked first by the next run; no app is lost."""
    head = fleet.github.push("acme/shop", "main", {"README.md": "next"}, message="next")
    limited: dict[str, object] = {"message": "You have exceeded a secondary rate limit."}
    fleet.github.fail_next("GET", "/repos/acme/cart/", 403, headers={"retry-after": "0"},
                           body=limited)  # fmt: skip
    # One question at a time, in order: ci-cart (limited), then ci-gone and ci-shop.
    first = fleet.fleet(FLEET_CONCURRENCY="1")
    assert first.code == 0, first.output
    (summary,) = first.stdout.splitlines()
    assert "3 not asked this run, asked first by the next" in summary
    assert "GitHub asked the fleet to wait (retry-after 0s)" in summary
    assert fleet.jobs_of("ci-shop") == []

    second = fleet.fleet(FLEET_CONCURRENCY="1")
    assert second.code == 0, second.output
    line, summary = second.stdout.splitlines()
    assert line.startswith("ci-shop: created Job ci-shop-f") and head[:7] in line
    assert "not asked" not in summary


def test_the_fleets_own_trouble_is_its_exit_code(fleet: Fleet) -> None:
    """2 for the fleet's own configuration, 3 when Kubernetes cannot be asked; no Job either way."""
    fleet.github.push("acme/shop", "main", {"README.md": "next"}, message="next")  # work to do
    bad = fleet.fleet(FLEET_SELECTOR="not a selector")
    assert bad.code == 2 and "FLEET_SELECTOR" in bad.stderr, bad.output
    for setting in ("FLEET_RECORD", "FLEET_TOKEN_SECRET"):  # not its own: RBAC says no, by name
        other = fleet.fleet(**{setting: "another-name"})
        assert other.code == 2 and f"{setting} " in other.stderr, other.output
    fleet.github.require_token("not-the-fleets")
    unknown = fleet.fleet()
    assert unknown.code == 2 and "GitHub refused the fleet's token (401" in unknown.stderr
    fleet.kubectl("delete", "configmap", "ci-fleet", "-n", fleet.cicd)
    gone = fleet.fleet()
    assert gone.code == 2 and "does not exist: the chart creates it" in gone.stderr, gone.output
    dead = fleet.tmp / "kubeconfig-dead"
    config = yaml.safe_load(Path(fleet.kube.kubeconfig).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens on discard
    dead.write_text(yaml.safe_dump(config))
    env = {**fleet.env, **fleet.container_env(fleet.get("cronjob", "ci-fleet"))}
    done = subprocess.run(
        [sys.executable, "-m", "ci_runner", "fleet"], env={**env, "KUBECONFIG": str(dead)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3 and "unreachable" in done.stderr, done.stderr
    assert fleet.get("jobs", "", "-l", "ci-runner.io/app")["items"] == []


def test_an_app_suspended_by_hand_gets_no_job(fleet: Fleet) -> None:
    """Every CronJob is suspended in fleet mode; an app suspended itself carries an annotation."""
    fleet.github.push("acme/cart", "main", {"README.md": "next"}, message="next")
    fleet.kubectl("annotate", "cronjob", "ci-cart", "ci-runner.io/suspended=true", "-n", fleet.cicd)
    done = fleet.fleet()
    assert done.code == 0, done.output
    assert done.stdout.startswith(
        "fleet: 4 app(s); 0 Job(s) created; 0 with a Job running; 1 idle; 1 suspended"
    )
    assert fleet.jobs_of("ci-cart") == []

    as_json = fleet.fleet(LOG_FORMAT="json")  # the chart's: one JSON object per line, stdout too
    (summary,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert summary["level"] == "info" and summary["message"].startswith("fleet: 4 app(s)")
