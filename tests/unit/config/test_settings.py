"""Settings: every problem is named at once; defaults are those users of the old runner expect."""

from __future__ import annotations

import pytest
from ci_runner.config import Settings, StateSettings, load, table
from ci_runner.errors import ConfigError
from ci_runner.parsing import DEFAULT_KANIKO_IMAGE

from tests.support.appkeys import ec_pem, rsa_pem
from tests.support.settings import APP_ENV, app_settings

APP = {"GITHUB_APP_ID": "12345", "GITHUB_APP_INSTALLATION_ID": "678"}


@pytest.fixture(scope="module")
def app_key() -> str:
    return rsa_pem()


settings = app_settings


def test_defaults() -> None:
    s = settings()
    assert (s.branch, s.cicd_namespace, s.deploy_namespace) == ("main", "cicd", "default")
    assert (s.max_attempts, s.build_timeout, s.helm_timeout) == (3, 1800, 300)
    assert s.state_configmap == "ci-runner-shop"
    assert s.kaniko_image == DEFAULT_KANIKO_IMAGE
    assert s.verify_ssl is None  # the kubeconfig decides
    assert s.verify_https is True
    assert s.token_secret_name is None


def test_github_enterprise_api_and_token_secret() -> None:
    s = settings(GITHUB_API_URL="https://ghe.example.com/api/v3/", GIT_TOKEN="fake-token-t")
    assert s.github_api_url == "https://ghe.example.com/api/v3"
    assert s.token_secret_name == "ci-runner-shop-git"
    assert settings(GIT_TOKEN="fake-token-t", GIT_TOKEN_SECRET="mine").token_secret_name == "mine"


@pytest.mark.parametrize(
    ("given", "api"),
    [
        (None, "https://api.github.com"),
        ("https://api.github.com/", "https://api.github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3"),
        ("https://api.octocorp.ghe.com", "https://api.octocorp.ghe.com"),
        # The enterprise's own address: its API is at api.SUBDOMAIN.ghe.com, as GitHub documents.
        ("https://octocorp.ghe.com/", "https://api.octocorp.ghe.com"),
        ("https://API.Octo-Corp.GHE.com", "https://api.octo-corp.ghe.com"),
    ],
)
def test_the_api_of_github_ghes_and_ghe_com(given: str | None, api: str) -> None:
    s = settings(**({"GITHUB_API_URL": given} if given else {}))
    # The build pod downloads the commit through this API (no git host is needed any more).
    assert s.github_api_url == api


def test_ghe_com_with_a_ghes_path_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        settings(GITHUB_API_URL="https://octocorp.ghe.com/api/v3")
    assert "must be https://api.octocorp.ghe.com on GHE.com (its API has no path)" in str(
        caught.value
    )


def test_branch_with_slash_gives_a_dashed_latest_tag() -> None:
    assert settings(BRANCH="feature/new-ui").latest_tag == "feature-new-ui-latest"
    assert settings(BRANCH="fix+1@x").latest_tag == "fix-1-x-latest"
    assert len(settings(BRANCH="b" * 200).latest_tag) == 128


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            Settings,
            {},
            {
                "REPO": "not-a-repo",
                "MAX_RETRIES": "0",
                "BUILD_TIMEOUT": "soon",
                "VERIFY_SSL": "maybe",
                "LOG_FORMAT": "xml",
                "DEPLOY_NS": "Bad_NS",
                "GITHUB_API_URL": "ftp://x",
            },
        )
    problems = caught.value.problems
    for expected in (
        "REPO must look like owner/name",
        "IMAGE is required",
        "CHART_PATH is required",
        "RELEASE is required",
        "MAX_RETRIES must be at least 1",
        "BUILD_TIMEOUT must be a whole number",
        "VERIFY_SSL must be true or false",
        "LOG_FORMAT must be text or json",
        "DEPLOY_NS must be a lowercase DNS label",
        "GITHUB_API_URL must be an http(s) URL",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IMAGE", "registry.example.com/acme/shop:v1", "IMAGE must be a registry/repository"),
        ("CHART_PATH", "../elsewhere", "CHART_PATH must be a relative path"),
        ("RELEASE", "Shop", "RELEASE must be a lowercase DNS label"),
        ("RELEASE", "x" * 54, "RELEASE must be a lowercase DNS label"),
        ("BRANCH", "bad..branch", "BRANCH is not a valid git branch name"),
        ("BRANCH", "main#abc", "BRANCH is not a valid git branch name"),
        ("DOCKERFILE", "/etc/Dockerfile", "DOCKERFILE must be a relative path"),
        ("VALUES_FILES", "a.yaml,../b.yaml", "VALUES_FILES entries must be paths in the chart"),
        ("IMAGE_TAG_KEY", "image..tag", "IMAGE_TAG_KEY must be a dotted values key"),
        ("REGISTRY_SECRET", "Not A Name", "REGISTRY_SECRET must be a valid Secret name"),
    ],
)
def test_bad_values_are_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(**{name: value})


def test_status_needs_only_the_release() -> None:
    s = load(StateSettings, {}, {"RELEASE": "shop"})
    assert s.state_configmap == "ci-runner-shop"
    with pytest.raises(ConfigError, match="RELEASE is required"):
        load(StateSettings, {}, {})


def test_an_option_wins_over_the_environment() -> None:
    s = load(Settings, {"branch": "next", "verify_ssl": False}, {**APP_ENV, "BRANCH": "main"})
    assert (s.branch, s.verify_ssl) == ("next", False)


def test_every_default_parses_as_its_own_setting_would() -> None:
    """The default a user reads (help, README) is one the parser accepts, giving the default."""
    defaults = settings()
    for f, spec in table(Settings):
        if spec.shown_default is None or "<" in spec.shown_default:  # derived: <RELEASE>, <IMAGE>
            continue
        shown = spec.shown_default
        assert getattr(settings(**{spec.env: shown}), f.name) == getattr(defaults, f.name), f.name


def test_every_setting_refuses_nonsense_by_name_or_takes_it_as_text() -> None:
    for f, spec in table(Settings):
        if spec.secret:
            continue
        try:
            value = getattr(settings(**{spec.env: "../Not Valid!"}), f.name)
        except ConfigError as e:
            (problem,) = e.problems
            assert problem.startswith(f"{spec.env} "), problem
            assert problem.endswith(", got '../Not Valid!'"), problem
        else:  # free text (a branch-like name, an image reference, a check's name) as given
            assert value in ("../Not Valid!", ("../Not Valid!",)), f.name


def test_a_secret_setting_is_never_echoed(app_key: str) -> None:
    secrets = {
        "GIT_TOKEN": ({}, "ghp_fake_secret_0123"),
        "NOTIFY_URL": ({}, "https://hooks.example.com/services/fake_secret_0123"),
        "GITHUB_APP_PRIVATE_KEY": (APP, app_key),
    }
    for f, spec in table(Settings):
        if spec.secret:
            others, value = secrets[spec.env]
            s = settings(**others, **{spec.env: value})
            assert getattr(s, f.name) == value.strip()  # as given, less surrounding space
            assert value not in repr(s), f"{f.name} shows in repr(Settings)"


def test_reporting_defaults_follow_the_release_and_namespace() -> None:
    s = settings(DEPLOY_NS="web")
    assert (s.github_status, s.github_deployments) == (True, False)
    assert (s.status_context, s.environment) == ("ci-runner/shop", "web/shop")
    assert s.notify_url is None and not s.has_credentials


def test_a_github_app_instead_of_a_token(app_key: str) -> None:
    s = settings(**APP, GITHUB_APP_PRIVATE_KEY=app_key)
    assert (s.github_app_id, s.github_app_installation_id) == ("12345", 678)
    assert s.uses_app and s.has_credentials
    assert s.token_secret_name == "ci-runner-shop-git"  # the runner keeps the installation token
    client_id = {**APP, "GITHUB_APP_ID": "Iv23liClientId", "GITHUB_APP_PRIVATE_KEY": app_key}
    assert settings(**client_id).github_app_id == "Iv23liClientId"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GIT_TOKEN": "fake-token-t"}, "GIT_TOKEN and GITHUB_APP_* are both set"),
        ({"GIT_TOKEN_SECRET": "mine"}, "GIT_TOKEN_SECRET and GITHUB_APP_* are both set"),
        (
            {"GITHUB_APP_INSTALLATION_ID": ""},
            "GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY given without GITHUB_APP_INSTALLATION_ID",
        ),
        ({"GITHUB_APP_PRIVATE_KEY": "not a key"}, "GITHUB_APP_PRIVATE_KEY is not a PEM private"),
        ({"GITHUB_APP_PRIVATE_KEY": "EC"}, "GITHUB_APP_PRIVATE_KEY is not an RSA key"),
        ({"GITHUB_APP_ID": "my-app"}, "GITHUB_APP_ID must be the App's numeric ID"),
    ],
)
def test_app_credentials_that_cannot_work_are_refused(
    app_key: str, env: dict[str, str], message: str
) -> None:
    given = {**APP, "GITHUB_APP_PRIVATE_KEY": app_key, **env}
    if given["GITHUB_APP_PRIVATE_KEY"] == "EC":
        given["GITHUB_APP_PRIVATE_KEY"] = ec_pem()
    with pytest.raises(ConfigError) as caught:
        settings(**given)
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems
    assert "PRIVATE KEY" not in str(caught.value)  # the key itself is never echoed


def test_a_github_token_too_short_to_mask_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        settings(GIT_TOKEN="abc1234")
    assert caught.value.problems == [
        "GIT_TOKEN is shorter than 8 characters: too short to mask reliably, got ***"
    ]
    assert settings(GIT_TOKEN="abcd1234").git_token == "abcd1234"
