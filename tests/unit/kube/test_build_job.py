"""The Kaniko build Job manifest, as a pure function of settings and commit, and the digest
read back from its pod."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from ci_runner import logs
from ci_runner.errors import ConfigError
from ci_runner.kube import token_secret
from ci_runner.kube.build_job import (
    build_job,
    check_secrets,
    foreign_job,
    job_name,
    pushed_digest,
    secret_credentials,
)

from tests.support.appkeys import rsa_pem
from tests.support.settings import app_settings

SHA = "0123456789abcdef0123456789abcdef01234567"


def job(**extra: str) -> dict[str, Any]:
    return build_job(app_settings(**extra), SHA, 1)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = manifest["spec"]["template"]["spec"]["containers"][0]
    return first


def init(manifest: dict[str, Any]) -> dict[str, Any]:
    (fetch,) = manifest["spec"]["template"]["spec"]["initContainers"]
    assert isinstance(fetch, dict)
    return fetch


def test_kaniko_builds_the_fetched_context_and_pushes_both_tags() -> None:
    args = container(job(BRANCH="feature/x"))["args"]
    assert args[0] == "--context=dir:///workspace"
    assert not [a for a in args if a.startswith("--context-sub-path")]
    assert f"--destination=r.example.com/acme/shop:{SHA}" in args
    assert "--destination=r.example.com/acme/shop:feature-x-latest" in args


def test_the_init_container_fetches_the_exact_commit_with_the_runners_image() -> None:
    manifest = job(RUNNER_IMAGE="registry.example.com/ci/ci-runner:1.2.3", BUILD_CONTEXT="app")
    fetch = init(manifest)
    assert fetch["image"] == "registry.example.com/ci/ci-runner:1.2.3"
    assert fetch["args"] == [
        "fetch-context",
        f"--sha={SHA}",
        "--into=/workspace",
        "--message-file=/dev/termination-log",
    ]
    env = {e["name"]: e.get("value") for e in fetch["env"]}
    assert env["REPO"] == "acme/shop"
    assert env["BUILD_CONTEXT"] == "app"
    assert env["GITHUB_API_URL"] == "https://api.github.com"
    assert {"name": "context", "mountPath": "/workspace"} in fetch["volumeMounts"]
    assert {"name": "context", "mountPath": "/workspace"} in container(manifest)["volumeMounts"]


def test_the_runner_image_defaults_to_the_published_one_of_this_version() -> None:
    from ci_runner import __version__

    assert init(job())["image"] == f"ghcr.io/ci-runner/ci-runner:{__version__}"


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3"),
        ("https://api.octocorp.ghe.com", "https://api.octocorp.ghe.com"),
    ],
)
def test_the_init_container_asks_the_api_of_ghes_and_ghe_com(api: str, expected: str) -> None:
    env = {e["name"]: e.get("value") for e in init(job(GITHUB_API_URL=api))["env"]}
    assert env["GITHUB_API_URL"] == expected


def test_the_init_container_is_hardened_like_the_runner_and_has_resources() -> None:
    manifest = job(GIT_TOKEN="fake-super-secret")
    fetch = init(manifest)
    security = fetch["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert fetch["resources"]["requests"] and fetch["resources"]["limits"]["memory"]
    assert manifest["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    # The tarball waits on a writable /tmp of its own.
    assert {"name": "fetch-tmp", "mountPath": "/tmp"} in fetch["volumeMounts"]


def test_job_runs_once_within_the_build_timeout_and_is_cleaned_up() -> None:
    spec = job(BUILD_TIMEOUT="600")["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_labels_name_release_and_commit() -> None:
    labels = job()["metadata"]["labels"]
    assert labels["ci-runner.io/release"] == "shop"
    assert labels["ci-runner.io/commit"] == SHA


def test_token_only_as_a_secret_reference_and_only_in_the_init_container() -> None:
    manifest = job(GIT_TOKEN="fake-super-secret", REGISTRY_SECRET="regcred")
    assert "fake-super-secret" not in json.dumps(manifest)
    fetch = init(manifest)
    (token,) = [e for e in fetch["env"] if "valueFrom" in e]
    assert token == {
        "name": "GIT_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "ci-runner-shop-git", "key": "token"}},
    }
    settings = app_settings(GIT_TOKEN="fake-super-secret")
    secret = token_secret.manifest(settings, "fake-super-secret")
    assert secret["metadata"]["name"] == "ci-runner-shop-git"


@pytest.mark.parametrize(
    "extra",
    [
        {"GIT_TOKEN": "fake-super-secret"},
        {"GIT_TOKEN": "fake-super-secret", "GIT_TOKEN_SECRET": "shop-git-token"},
        {
            "GITHUB_APP_ID": "12345",
            "GITHUB_APP_INSTALLATION_ID": "678",
            "GITHUB_APP_PRIVATE_KEY": "app-key",
        },
    ],
    ids=["token", "token-secret", "github-app"],
)
def test_kaniko_holds_no_github_credential_in_env_files_or_mounts(extra: dict[str, str]) -> None:
    if "GITHUB_APP_PRIVATE_KEY" in extra:
        extra = {**extra, "GITHUB_APP_PRIVATE_KEY": rsa_pem()}
    settings = app_settings(REGISTRY_SECRET="regcred", **extra)
    manifest = build_job(settings, SHA, 1)
    pod = manifest["spec"]["template"]["spec"]
    kaniko = container(manifest)
    token_secret_name = settings.token_secret_name
    assert token_secret_name
    # No environment at all, no envFrom, and no mount of any Secret but the registry's.
    assert "env" not in kaniko and "envFrom" not in kaniko
    secret_volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secret_volumes == {"registry-auth": "regcred"}
    mounted = {m["name"] for m in kaniko["volumeMounts"]}
    assert mounted == {"context", "registry-auth"}
    assert token_secret_name not in json.dumps(kaniko)
    # The registry credentials are Kaniko's alone: the init container does not mount them.
    assert {m["name"] for m in init(manifest)["volumeMounts"]} == {"context", "fetch-tmp"}
    assert [
        e["valueFrom"]["secretKeyRef"]["name"] for e in init(manifest)["env"] if "valueFrom" in e
    ] == [token_secret_name]


def test_public_repo_needs_no_token() -> None:
    manifest = job()
    assert "env" not in container(manifest)
    assert not [e for e in init(manifest)["env"] if "valueFrom" in e]


def test_registry_secret_is_mounted_as_kaniko_docker_config() -> None:
    manifest = job(REGISTRY_SECRET="regcred")
    mount = container(manifest)["volumeMounts"][-1]
    volume = manifest["spec"]["template"]["spec"]["volumes"][-1]
    assert mount == {"name": "registry-auth", "mountPath": "/kaniko/.docker"}
    assert volume["secret"]["secretName"] == "regcred"
    assert volume["secret"]["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]


def test_build_context_is_unpacked_by_the_init_container_and_dockerfile_is_relative_to_it() -> None:
    manifest = job(BUILD_CONTEXT="services/api", DOCKERFILE="build/Dockerfile")
    env = {e["name"]: e.get("value") for e in init(manifest)["env"]}
    assert env["BUILD_CONTEXT"] == "services/api"
    assert "--dockerfile=build/Dockerfile" in container(manifest)["args"]


def test_job_names_are_valid_and_distinct_per_attempt() -> None:
    long_release = "r" * 53
    names = {job_name(long_release, SHA, n) for n in (1, 2, 3)}
    assert len(names) == 3
    assert all(len(n) <= 63 and n[0].isalnum() and n[-1].isalnum() for n in names)


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize("nonce", ["", "x7k2q"])
def test_releases_sharing_fifty_characters_get_jobs_of_their_own(nonce: str) -> None:
    shared = "payments-" + "p" * 40 + "-"  # 50 characters, then each app's own
    names = [job_name(shared + end, SHA, 1, nonce) for end in ("eu", "us", "ap")]
    assert len(set(names)) == 3
    assert all(len(n) <= 63 and DNS_LABEL.match(n) for n in names)
    assert all(f"-build-{SHA[:12]}-1" in n for n in names)


def test_a_release_that_fits_keeps_the_name_it_always_had() -> None:
    # A Job a crashed run of an earlier version left is still found again by its name.
    assert job_name("shop", SHA, 2) == f"shop-build-{SHA[:12]}-2"
    assert job_name("s" * 42, SHA, 2) == "s" * 42 + f"-build-{SHA[:12]}-2"


def test_only_a_job_labelled_with_this_release_and_commit_is_ours() -> None:
    ours = build_job(app_settings(), SHA, 1)
    assert foreign_job(ours, "shop", SHA) is None
    assert foreign_job(ours, "shop-eu", SHA) == f"its labels say release 'shop', commit '{SHA}'"
    other = "f" * 40
    assert foreign_job(ours, "shop", other) == f"its labels say release 'shop', commit '{SHA}'"
    assert foreign_job({"metadata": {"name": "x"}}, "shop", SHA) == (
        "its labels say release None, commit None"
    )


# -- issue 10: tuning the build ------------------------------------------------------------


settings = app_settings


def refusal(**extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        settings(**extra)
    (problem,) = caught.value.problems
    return problem


def test_the_digest_goes_to_the_termination_log_and_a_failure_leaves_the_log_there() -> None:
    kaniko = container(job())
    assert "--digest-file=/dev/termination-log" in kaniko["args"]
    assert kaniko["terminationMessagePath"] == "/dev/termination-log"
    assert kaniko["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_no_cache_no_insecure_flags_and_todays_resources_by_default() -> None:
    manifest = job()
    args = container(manifest)["args"]
    assert not [a for a in args if a.startswith(("--cache", "--insecure", "--skip-tls"))]
    assert container(manifest)["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}}
    pod = manifest["spec"]["template"]["spec"]
    assert not {"nodeSelector", "tolerations", "affinity", "serviceAccountName"} & pod.keys()
    assert "priorityClassName" not in pod


def test_build_cache_pushes_layers_to_image_slash_cache_for_a_week() -> None:
    args = container(job(BUILD_CACHE="true"))["args"]
    assert "--cache=true" in args
    assert "--cache-repo=r.example.com/acme/shop/cache" in args
    assert "--cache-ttl=168h" in args


def test_cache_repo_and_ttl_are_taken_as_given() -> None:
    args = container(
        job(BUILD_CACHE="true", CACHE_REPO="cache.example.com/layers/shop", BUILD_CACHE_TTL="72h")
    )["args"]
    assert "--cache-repo=cache.example.com/layers/shop" in args
    assert "--cache-ttl=72h" in args
    # Without BUILD_CACHE, CACHE_REPO alone turns nothing on.
    assert not [a for a in container(job(CACHE_REPO="c.io/x"))["args"] if "cache" in a]


@pytest.mark.parametrize("ttl", ["1w", "0h", "168", "h", "-1h"])
def test_a_cache_ttl_that_is_no_duration_is_refused(ttl: str) -> None:
    assert refusal(BUILD_CACHE_TTL=ttl).startswith("BUILD_CACHE_TTL must be a duration")


def test_build_args_always_carry_the_commit_and_branch_then_the_users() -> None:
    args = container(job(BRANCH="feature/x", BUILD_ARGS="NODE_ENV=production, GREETING=hi there"))[
        "args"
    ]
    build_args = [a for a in args if a.startswith("--build-arg=")]
    assert build_args == [
        f"--build-arg=CI_RUNNER_SHA={SHA}",
        "--build-arg=CI_RUNNER_BRANCH=feature/x",
        "--build-arg=NODE_ENV=production",
        "--build-arg=GREETING=hi there",  # one word: no shell splits it
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NOEQUALS", "BUILD_ARGS entries must be KEY=VALUE"),
        ("1BAD=x", "BUILD_ARGS entries must be KEY=VALUE"),
        ("CI_RUNNER_SHA=fake", "BUILD_ARGS may not set CI_RUNNER_SHA: the runner passes it"),
        ("A=1,CI_RUNNER_BRANCH=x", "BUILD_ARGS may not set CI_RUNNER_BRANCH"),
    ],
)
def test_bad_build_args_are_refused(value: str, message: str) -> None:
    assert refusal(BUILD_ARGS=value).startswith(message)


def test_kaniko_args_are_split_like_a_shell_and_come_last() -> None:
    args = container(job(KANIKO_ARGS="--snapshot-mode=redo --label 'team=web shop' -v debug"))[
        "args"
    ]
    assert args[-5:] == ["--snapshot-mode=redo", "--label", "team=web shop", "-v", "debug"]


@pytest.mark.parametrize(
    ("value", "flag", "instead"),
    [
        ("--context=dir:///workspace", "--context", "REPO and BRANCH"),
        ("--context dir:///workspace", "--context", "REPO and BRANCH"),
        ("-c dir:///workspace", "--context", "REPO and BRANCH"),
        ("--context-sub-path=app", "--context-sub-path", "BUILD_CONTEXT"),
        ("--dockerfile=other", "--dockerfile", "DOCKERFILE"),
        ("-f other", "--dockerfile", "DOCKERFILE"),
        ("--verbosity=info --destination=evil.io/x:1", "--destination", "IMAGE"),
        ("-d evil.io/x:1", "--destination", "IMAGE"),
        ("--digest-file=/tmp/d", "--digest-file", "DEPLOY_BY_DIGEST"),
    ],
)
def test_kaniko_args_may_not_set_what_the_runner_sets(value: str, flag: str, instead: str) -> None:
    problem = refusal(KANIKO_ARGS=value)
    assert problem.startswith(f"KANIKO_ARGS may not set {flag}: the runner sets it; use {instead}")


@pytest.mark.parametrize(
    ("value", "setting"),
    [
        ("--cache=false", "BUILD_CACHE"),
        ("--cache-repo=x.io/c", "CACHE_REPO"),
        ("--cache-ttl 1h", "BUILD_CACHE_TTL"),
    ],
)
def test_with_build_cache_on_kaniko_args_may_not_set_the_cache_flags(
    value: str, setting: str
) -> None:
    flag = value.split("=")[0].split()[0]
    problem = refusal(BUILD_CACHE="true", KANIKO_ARGS=value)
    assert problem == f"KANIKO_ARGS may not set {flag} while BUILD_CACHE is on: use {setting}"
    # With the runner's cache off, the user may run Kaniko's cache their own way.
    assert value.split()[0] in container(job(KANIKO_ARGS=value))["args"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("--oops 'unclosed", "KANIKO_ARGS must split into words as a shell would"),
        ("redo --snapshot-mode", "KANIKO_ARGS must start with a flag"),
    ],
)
def test_kaniko_args_that_are_not_flags_are_refused(value: str, message: str) -> None:
    assert refusal(KANIKO_ARGS=value).startswith(message)


def test_build_pod_sets_the_kaniko_resources_and_the_pods_placement_and_identity() -> None:
    chosen = {
        "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
        "nodeSelector": {"pool": "builds"},
        "tolerations": [{"key": "builds", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "serviceAccountName": "kaniko-push",
        "priorityClassName": "low",
    }
    manifest = job(BUILD_POD=json.dumps(chosen))
    pod = manifest["spec"]["template"]["spec"]
    assert container(manifest)["resources"] == chosen["resources"]
    for key in ("nodeSelector", "tolerations", "affinity", "serviceAccountName"):
        assert pod[key] == chosen[key]
    assert pod["priorityClassName"] == "low"
    # What the runner relies on stays its own.
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert "resources" not in pod


def test_build_pod_resources_alone_keep_the_default_placement() -> None:
    pod = job(BUILD_POD='{"resources": {"requests": {"cpu": "1"}}}')["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "1"}}
    assert "nodeSelector" not in pod


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"hostNetwork": true}', "BUILD_POD may not set 'hostNetwork' (only resources, "),
        ('{"containers": []}', "BUILD_POD may not set 'containers'"),
        ('{"nodeSelector": "pool=builds"}', "BUILD_POD nodeSelector must be a JSON object"),
        ('{"tolerations": {}}', "BUILD_POD tolerations must be a JSON array"),
        ('{"serviceAccountName": 7}', "BUILD_POD serviceAccountName must be a JSON string"),
        ("[1, 2]", "BUILD_POD must be a JSON object"),
        ("{nope", "BUILD_POD must be a JSON object"),
    ],
)
def test_build_pod_refuses_other_keys_by_name_and_wrong_types(value: str, message: str) -> None:
    assert refusal(BUILD_POD=value).startswith(message)


def test_registry_insecure_pushes_over_plain_http() -> None:
    args = container(job(REGISTRY_INSECURE="true"))["args"]
    assert "--insecure" in args
    assert "--skip-tls-verify" in args


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"IMAGE_DIGEST_KEY": "image.digest", "DEPLOY_BY_DIGEST": "false"},
            "IMAGE_DIGEST_KEY needs DEPLOY_BY_DIGEST on",
        ),
        ({"IMAGE_DIGEST_KEY": "image.tag"}, "IMAGE_TAG_KEY and IMAGE_DIGEST_KEY must differ"),
        (
            {"IMAGE_DIGEST_KEY": "image.repository"},
            "IMAGE_REPOSITORY_KEY and IMAGE_DIGEST_KEY must differ",
        ),
    ],
)
def test_digest_settings_that_contradict_each_other_are_refused(
    env: dict[str, str], message: str
) -> None:
    assert refusal(**env).startswith(message)


# -- the digest, read back from the build pod --------------------------------------------

DIGEST = "sha256:" + "ab" * 32


def pod(message: str | None, exit_code: int = 0, name: str = "kaniko") -> dict[str, Any]:
    terminated: dict[str, Any] = {"exitCode": exit_code, "reason": "Completed"}
    if message is not None:
        terminated["message"] = message
    status = {"name": name, "state": {"terminated": terminated}}
    return {"metadata": {"name": "p"}, "status": {"containerStatuses": [status]}}


def test_the_digest_comes_from_the_kaniko_containers_termination_message() -> None:
    assert pushed_digest(pod(DIGEST)) == DIGEST
    assert pushed_digest(pod(DIGEST + "\n")) == DIGEST


@pytest.mark.parametrize(
    "found",
    [
        pod(None),
        pod(""),
        pod("error pushing: UNAUTHORIZED", exit_code=1),
        pod(DIGEST, exit_code=1),
        pod("sha256:short"),
        pod(DIGEST, name="sidecar"),
        {"metadata": {"name": "p"}, "status": {"phase": "Pending"}},
    ],
)
def test_no_digest_unless_kaniko_ended_well_and_wrote_one(found: dict[str, Any]) -> None:
    assert pushed_digest(found) is None


# -- issue 17: the credentials of the Secrets a build uses are masked, or refused --------------


def docker_config(**entry: str) -> str:
    config = {"auths": {"r.example.com": entry}}
    return base64.b64encode(json.dumps(config).encode()).decode()


class SecretsOnly:
    """The one call check_secrets makes of the Kubernetes API, answered from a dict."""

    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets

    def read(self, resource: object, namespace: str, name: str) -> dict[str, Any] | None:
        data = self.secrets.get(name)
        return None if data is None else {"data": data}


def test_every_credential_of_a_docker_config_and_a_token_secret_is_found() -> None:
    auth = base64.b64encode(b"robot:registry-pass-123").decode()
    found = secret_credentials(
        ".dockerconfigjson",
        docker_config(username="robot", password="registry-pass-123", auth=auth),
    )
    assert found == [
        ("password for r.example.com", "registry-pass-123"),
        ("auth for r.example.com", auth),
    ]
    token = base64.b64encode(b"ghp_token_0123456789\n").decode()
    assert secret_credentials("token", token) == [("the token", "ghp_token_0123456789")]
    assert secret_credentials(".dockerconfigjson", "bm90IGpzb24=") == []  # "not json"


def test_the_registry_password_is_masked_once_the_secrets_are_checked() -> None:
    auth = base64.b64encode(b"robot:registry-pass-123").decode()
    kube = SecretsOnly({"regcred": {".dockerconfigjson": docker_config(auth=auth)}})
    check_secrets(kube, app_settings(REGISTRY_SECRET="regcred"))  # type: ignore[arg-type]
    assert logs.mask("denied: robot/registry-pass-123", []) == "denied: robot/***"


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        ({"password": "short"}, "password for r.example.com"),
        ({"auth": base64.b64encode(b"robot:short").decode()}, "the password in the auth for"),
        ({"identitytoken": "abc"}, "identitytoken for r.example.com"),
    ],
)
def test_a_registry_credential_too_short_to_mask_is_refused(
    entry: dict[str, str], what: str
) -> None:
    kube = SecretsOnly({"regcred": {".dockerconfigjson": docker_config(**entry)}})
    with pytest.raises(ConfigError) as caught:
        check_secrets(kube, app_settings(REGISTRY_SECRET="regcred"))  # type: ignore[arg-type]
    (problem,) = caught.value.problems
    assert problem.startswith(f"REGISTRY_SECRET Secret 'regcred' in namespace 'cicd' holds {what}")
    assert problem.endswith(
        "shorter than 8 characters: too short to be masked reliably in build logs"
    )


def test_a_token_secret_too_short_to_mask_is_refused() -> None:
    kube = SecretsOnly({"tok": {"token": base64.b64encode(b"abc").decode()}})
    with pytest.raises(
        ConfigError, match=r"GIT_TOKEN_SECRET Secret 'tok' .* holds the token shorter"
    ):
        check_secrets(kube, app_settings(GIT_TOKEN_SECRET="tok"))  # type: ignore[arg-type]


def test_build_pod_may_name_pull_secrets_for_a_private_runner_image() -> None:
    pulls = [{"name": "ghcr-pull"}]
    manifest = job(
        RUNNER_IMAGE="ghcr.io/acme/ci-runner:1.0.0",
        BUILD_POD=json.dumps({"imagePullSecrets": pulls}),
    )
    assert manifest["spec"]["template"]["spec"]["imagePullSecrets"] == pulls
