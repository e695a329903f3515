"""The chart and the manifests speak the runner's settings table (job/ci_runner/config/settings.py).

Every environment variable they give the runner is a row of the table (or one of a few that are
not settings), so documentation generated from the table cannot drift from what is deployed; and
the chart passes a setting that has a runner default only when the user set it, so the runner
owns its defaults.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_runner.config import Settings, table

from tests.ship.shipkit import Render, container_env, one
from tests.support import charts
from tests.support.charts import Document

SPECS = {spec.env: spec for _, spec in table(Settings)}
NOT_SETTINGS = {"HOME", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"}
"""What the runner's container gets that is not a runner setting: helm's writable homes."""

HELPERS = charts.CHART / "templates" / "_helpers.tpl"
VALUES_YAML = charts.CHART / "values.yaml"
SCHEMA = json.loads((charts.CHART / "values.schema.json").read_text())
KUSTOMIZATION = charts.MANIFESTS / "kustomization.yaml"


def chart_settings() -> dict[str, str]:
    """The chart's one mapping of runner settings, values key -> variable (ci-runner.settingEnv)."""
    found = re.search(
        r'^\{\{- define "ci-runner\.settingEnv" -\}\}\n(.*?)^\{\{- end -\}\}',
        HELPERS.read_text(),
        flags=re.MULTILINE | re.DOTALL,
    )
    assert found, f"no ci-runner.settingEnv in {HELPERS}"
    mapping = yaml.safe_load(found.group(1))
    assert isinstance(mapping, dict) and mapping
    return mapping


CHART_SETTINGS = chart_settings()
RUNNER_KEYS = SCHEMA["properties"]["runner"]["properties"]
"""Keys under runner (and so under apps[].runner): set for every app, or per app."""
APP_KEYS = SCHEMA["properties"]["apps"]["items"]["properties"]
"""Keys directly under apps[]: per app only."""
CHART_DEFAULTS = yaml.safe_load(VALUES_YAML.read_text())["runner"]

# One value for every app (runner.<key>) and another for one app: each valid for the schema and
# for the runner's parser, neither the runner's default. A setting the chart newly exposes needs
# its pair here.
EXAMPLES: dict[str, tuple[Any, Any]] = {
    "kanikoImage": ("registry.example.com/kaniko:v1", "registry.example.com/kaniko:v2"),
    "maxRetries": (4, 7),
    "buildTimeout": (2400, 1000000),  # a large number must not come out as 1e+06
    "helmTimeout": (600, 900),
    "helmForceConflicts": (True, False),
    "buildStartGrace": (600, 60),
    "tarballTimeout": (1200, 30),
    "logFormat": ("text", "json"),
    "verifySsl": (False, True),  # false is a value, not "unset"
    "githubApiUrl": ("https://github.example.com/api/v3", "https://ghe.example.org/api/v3"),
    "branch": (None, "release/2.x"),
    "dockerfile": (None, "docker/Dockerfile.prod"),
    "buildContext": (None, "services/web"),
    "imageRepositoryKey": (None, "app.image.repository"),
    "imageTagKey": (None, "app.image.tag"),
    "buildCache": (True, False),
    "cacheRepo": (None, "registry.example.com/cache/web"),
    "buildCacheTtl": ("72h", "336h"),
    "buildArgs": (None, ["NODE_ENV=production", "GREETING=hello world"]),
    "kanikoArgs": ("--snapshot-mode=redo", "--label 'team=web shop'"),
    "build": (
        {"nodeSelector": {"pool": "builds"}, "priorityClassName": "low"},
        {"resources": {"requests": {"cpu": "2", "memory": "4Gi"}}},
    ),
    "registryInsecure": (True, False),
    "imageDigestKey": (None, "app.image.digest"),
    "deployByDigest": (False, True),
    "watchPaths": (None, ["src/**", "Dockerfile"]),
    "requireChecks": (["all"], ["test", "ci/lint"]),
}


def as_env(value: Any) -> str:
    """A values entry as the chart renders it into the environment (ci-runner.plain)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):  # Go's encoding/json, as helm's toJson: sorted keys, compact
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def runner_env(cronjob: Document) -> dict[str, str | None]:
    """The runner container's environment: name -> literal value (None when from a source)."""
    return {name: entry.get("value") for name, entry in container_env(cronjob).items()}


def helm_template(helm_bin: str, values: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_bin, "template", "ci", str(charts.CHART), "--namespace", "cicd", "-f", str(values)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_values(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


APP = {
    "repo": "example-org/web",
    "image": "registry.example.com/example-org/web",
    "chartPath": "deploy/chart",
    "deployNamespace": "web",
}


# --- every name is a setting the table knows --------------------------------------------------


def test_the_chart_mapping_names_settings_of_the_table_with_a_schema_entry() -> None:
    unknown = sorted(set(CHART_SETTINGS.values()) - SPECS.keys())
    assert not unknown, f"ci-runner.settingEnv names {unknown}, not in the settings table"
    no_schema = sorted(k for k in CHART_SETTINGS if k not in RUNNER_KEYS and k not in APP_KEYS)
    assert not no_schema, f"{no_schema} have no entry in values.schema.json"
    assert EXAMPLES.keys() == CHART_SETTINGS.keys(), "give each chart setting an example above"


@pytest.mark.helm
@pytest.mark.parametrize("values", ["one-app", "three-apps", "private"])
def test_every_variable_the_chart_sets_is_a_setting(render: Render, values: str) -> None:
    cronjobs = [d for d in render(values) if d["kind"] == "CronJob"]
    assert cronjobs
    names = {name for cronjob in cronjobs for name in container_env(cronjob)}
    assert names >= NOT_SETTINGS
    unknown = sorted(names - SPECS.keys() - NOT_SETTINGS)
    assert not unknown, f"the chart sets {unknown}, which the settings table does not know"


def commented_literals() -> set[str]:
    """The names of the `# - NAME=value` examples in kustomization.yaml's literals."""
    return set(re.findall(r"^\s*#\s*- ([A-Z][A-Z0-9_]*)=", KUSTOMIZATION.read_text(), re.MULTILINE))


def test_every_variable_the_manifests_set_is_a_setting(manifest_docs: list[Document]) -> None:
    cronjob = one(manifest_docs, "CronJob", "ci-runner")
    names = set(container_env(cronjob))
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    for source in container["envFrom"]:
        names |= set(one(manifest_docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    commented = commented_literals()
    assert {"GIT_TOKEN_SECRET", "REGISTRY_SECRET", "MAX_RETRIES"} <= commented
    unknown = sorted((names | commented) - SPECS.keys() - NOT_SETTINGS)
    assert not unknown, f"the manifests set {unknown}, which the settings table does not know"


def test_the_manifests_repeat_no_runner_default(manifest_docs: list[Document]) -> None:
    (settings,) = [d["data"] for d in manifest_docs if d["kind"] == "ConfigMap"]
    repeated = {k: v for k, v in settings.items() if k in SPECS and v == SPECS[k].shown_default}
    assert not repeated, f"{repeated} only repeat the runner's defaults: leave them out"


def test_the_runner_defaults_the_comments_name_are_the_runners() -> None:
    """values.yaml's `# ENV; the runner's default is X` and kustomization.yaml's
    `# - ENV=... # the runner's default is X` say what config/settings.py says."""
    in_values = re.findall(
        r"# ([A-Z][A-Z0-9_]*); the runner's default is (\S+)$", VALUES_YAML.read_text(), re.M
    )
    in_kustomization = re.findall(
        r"^\s*# - ([A-Z][A-Z0-9_]*)=\S*\s+# the runner's default is (\S+)$",
        KUSTOMIZATION.read_text(),
        re.MULTILINE,
    )
    assert in_kustomization
    wrong = [
        (env, said, SPECS[env].shown_default if env in SPECS else "no such setting")
        for env, said in in_values + in_kustomization
        if env not in SPECS or said != (SPECS[env].shown_default or "none")
    ]
    assert not wrong, f"(setting, comment says, config/settings.py says): {wrong}"
    chosen = {CHART_SETTINGS[k] for k in CHART_DEFAULTS.keys() & CHART_SETTINGS.keys()}
    missing = sorted(set(CHART_SETTINGS.values()) - {env for env, _ in in_values} - chosen)
    assert not missing, f"values.yaml shows no commented example of {missing}"


def test_the_chart_readme_says_runner_default_for_what_the_chart_leaves_unset() -> None:
    rows = re.findall(
        r"^\| `(\w+)` \| [^|]* \| ([^|]*) \|", (charts.CHART / "README.md").read_text(), re.M
    )
    defaults: dict[str, set[str]] = {}
    for key, default in rows:
        defaults.setdefault(key, set()).add(default.strip())
    for key in CHART_SETTINGS:
        expected = f"`{CHART_DEFAULTS[key]}`" if key in CHART_DEFAULTS else "runner default"
        assert defaults.get(key) == {expected}, key


# --- the chart passes a defaulted setting only when it is set ---------------------------------


def test_values_yaml_carries_no_copy_of_a_runner_default() -> None:
    """Only logFormat: json, the chart's own choice (the runner's default is text)."""
    chosen = {k: CHART_DEFAULTS[k] for k in CHART_SETTINGS if k in CHART_DEFAULTS}
    assert chosen == {"logFormat": "json"}
    assert SPECS["LOG_FORMAT"].shown_default == "text"


@pytest.mark.helm
def test_unset_settings_render_no_variable(render: Render) -> None:
    env = runner_env(one(render("one-app"), "CronJob", "ci-web"))
    for name in ("MAX_RETRIES", "KANIKO_IMAGE", "BUILD_TIMEOUT", "HELM_TIMEOUT", "BRANCH"):
        assert name not in env, f"{name} is the runner's default: the chart must not set it"
    rendered = {k for k, name in CHART_SETTINGS.items() if name in env}
    assert rendered == {"logFormat"}
    assert env["LOG_FORMAT"] == "json"


@pytest.mark.helm
def test_settings_set_globally_and_per_app_render_with_their_values(
    helm_bin: str, tmp_path: Path
) -> None:
    shared = {k: g for k, (g, _) in EXAMPLES.items() if k in RUNNER_KEYS}
    # A key both under runner and apps[] (build) is set per app at the top of the app.
    own = {k: a for k, (_, a) in EXAMPLES.items() if k in RUNNER_KEYS and k not in APP_KEYS}
    top = {k: a for k, (_, a) in EXAMPLES.items() if k not in own}
    values = {
        "runner": {**shared, "activeDeadlineSeconds": 2000000},
        "apps": [
            {"name": "shared", **APP},
            {"name": "own", **APP, **top, "runner": own},
        ],
    }
    result = helm_template(helm_bin, write_values(tmp_path, values))
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    for app, expected in [("shared", shared), ("own", {**own, **top})]:
        env = runner_env(one(docs, "CronJob", f"ci-{app}"))
        for key, name in CHART_SETTINGS.items():
            if key not in expected:
                assert name not in env, f"{app}: {name} was not set"
                continue
            want = expected[key]
            text = as_env(want)
            assert env.get(name) == text, f"{app}: {name}"
            parsed = SPECS[name].parse(text)  # the runner takes what the chart passes
            if not isinstance(parsed, tuple):  # a list setting is parsed into its parts
                assert parsed == want or str(parsed) == text, f"{app}: {name}={text!r}"
        unknown = sorted(set(env) - SPECS.keys() - NOT_SETTINGS)
        assert not unknown, f"{app}: {unknown} are not settings"


@pytest.mark.helm
@pytest.mark.parametrize("over", [0, 1])
def test_the_deadline_check_counts_the_runners_default_timeouts(
    helm_bin: str, tmp_path: Path, over: int
) -> None:
    """With the timeouts unset, activeDeadlineSeconds must exceed the runner's own defaults
    (the chart's fallback must follow config/settings.py)."""
    runner_total = int(SPECS["BUILD_TIMEOUT"].shown_default or 0) + int(
        SPECS["HELM_TIMEOUT"].shown_default or 0
    )
    values = {
        "apps": [{"name": "a", **APP, "runner": {"activeDeadlineSeconds": runner_total + over}}]
    }
    result = helm_template(helm_bin, write_values(tmp_path, values))
    if over:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0
        assert f"buildTimeout + helmTimeout ({runner_total})" in result.stderr


@pytest.mark.helm
def test_logformat_null_leaves_the_runner_its_own_default(helm_bin: str, tmp_path: Path) -> None:
    """The chart's one choice (json) can be dropped; then the runner's default (text) applies."""
    values = {"runner": {"logFormat": None}, "apps": [{"name": "a", **APP}]}
    result = helm_template(helm_bin, write_values(tmp_path, values))
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert "LOG_FORMAT" not in runner_env(one(docs, "CronJob", "ci-a"))
