"""GitHub App authentication: the JWT GitHub wants, the kept token's lifetime, the exchange."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from ci_runner.errors import ConfigError
from ci_runner.github.app import app_jwt
from ci_runner.github.client import GitHub
from ci_runner.kube.build_job import build_job
from ci_runner.kube.token_secret import EXPIRES, TOKEN_KEY, kept_token, manifest
from ci_runner.run.auth import InstallationToken

from tests.support.appkeys import public_pem, rsa_pem
from tests.support.github_fake import GitHubFake
from tests.support.settings import app_settings

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_the_jwt_follows_githubs_rules() -> None:
    token = app_jwt("4242", rsa_pem(), NOW)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token, public_pem(rsa_pem()), algorithms=["RS256"], options={"verify_exp": False}
    )
    assert claims["iss"] == "4242"
    assert claims["iat"] == int(NOW.timestamp()) - 60  # against clock drift
    # At most 10 minutes ahead, with room for a clock a little fast.
    assert 0 < claims["exp"] - int(NOW.timestamp()) < 600


def secret(token: str, expires: datetime) -> dict[str, object]:
    return {
        "metadata": {"annotations": {EXPIRES: expires.isoformat()}},
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }


@pytest.mark.parametrize(
    ("kept", "usable"),
    [
        (secret("ghs_a", NOW + timedelta(minutes=50)), "ghs_a"),
        (secret("ghs_a", NOW + timedelta(minutes=11)), "ghs_a"),
        (secret("ghs_a", NOW + timedelta(minutes=10)), None),  # renewed ten minutes before
        (secret("ghs_a", NOW - timedelta(minutes=1)), None),
        ({"metadata": {}, "data": {"token": "Z2hwXw=="}}, None),  # a personal token kept before
        ({"metadata": {"annotations": {EXPIRES: "soon"}}, "data": {"token": "eA=="}}, None),
        (secret("ghs_a", (NOW + timedelta(hours=1)).replace(tzinfo=None)), None),  # no zone
        (None, None),
    ],
)
def test_a_kept_token_is_reused_until_ten_minutes_before_it_expires(
    kept: dict[str, object] | None, usable: str | None
) -> None:
    assert kept_token(kept, NOW) == usable


def test_the_kept_secret_carries_the_expiry() -> None:
    settings = app_settings(
        GITHUB_APP_ID="1", GITHUB_APP_INSTALLATION_ID="2", GITHUB_APP_PRIVATE_KEY=rsa_pem()
    )
    body = manifest(settings, "ghs_x", NOW + timedelta(hours=1))
    assert body["metadata"]["name"] == "ci-runner-shop-git"
    assert body["metadata"]["annotations"] == {EXPIRES: "2026-11-01T13:00:00+00:00"}
    assert body["stringData"] == {"token": "ghs_x"}


def client(github: GitHubFake) -> GitHub:
    return GitHub(app_settings(GITHUB_API_URL=github.url, API_TIMEOUT="2"))


def test_the_exchange_and_its_refusals(github: GitHubFake) -> None:
    github.register_app("4242", public_pem(rsa_pem()), 77)
    now = datetime.now(UTC)
    with client(github) as gh:
        token, expires = gh.installation_token(app_jwt("4242", rsa_pem(), now), 77)
        after = datetime.now(UTC)  # the fake stamps the hour from its own clock, in between
        assert token in github.app_tokens
        assert now + timedelta(minutes=59) < expires <= after + timedelta(hours=1)

        with pytest.raises(ConfigError, match="GitHub refused the App's JWT") as refused:
            gh.installation_token(app_jwt("4242", rsa_pem("not this app"), now), 77)
        assert refused.value.exit_code == 2
        assert "A JSON web token could not be decoded" in str(refused.value)
        with pytest.raises(ConfigError, match="check GITHUB_APP_INSTALLATION_ID"):
            gh.installation_token(app_jwt("4242", rsa_pem(), now), 78)


def test_the_kept_token_is_where_build_jobs_read_it() -> None:
    job = build_job(app_settings(GIT_TOKEN="fake-token-t"), "a" * 40, 1)
    # The init container that fetches the build context reads it; Kaniko never does.
    [container] = job["spec"]["template"]["spec"]["initContainers"]
    [ref] = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert ref == {"name": "ci-runner-shop-git", "key": TOKEN_KEY}


def test_the_client_asks_its_credential_source_at_each_request_but_not_for_the_exchange(
    github: GitHubFake,
) -> None:
    github.register_app("4242", public_pem(rsa_pem()), 77)
    github.create_repo("acme/shop")
    github.push("acme/shop", "main", {"a.txt": "1"})
    handed = iter(["ghs_first_token_x", "ghs_second_token"])
    asked: list[str] = []

    class Source:
        def __call__(self) -> str:
            asked.append(next(handed))
            return asked[-1]

        def refused(self, token: str) -> bool:
            return False

    with client(github) as gh:
        gh.use_credentials(Source())
        gh.head("main")
        gh.installation_token(app_jwt("4242", rsa_pem(), datetime.now(UTC)), 77)
        gh.head("main")
    sent = [r.header("Authorization") for r in github.requests]
    assert asked == ["ghs_first_token_x", "ghs_second_token"]
    assert sent[0] == "Bearer ghs_first_token_x" and sent[2] == "Bearer ghs_second_token"
    assert sent[1] is not None and sent[1].startswith("Bearer ey")  # the App's JWT


def test_a_kept_token_github_revoked_is_replaced_once_and_the_request_goes_through(
    github: GitHubFake,
) -> None:
    github.register_app("4242", public_pem(rsa_pem()), 77)
    github.create_repo("acme/shop")
    sha = github.push("acme/shop", "main", {"a.txt": "1"})
    with client(github) as gh:
        jwt = app_jwt("4242", rsa_pem(), datetime.now(UTC))
        kept, expires = gh.installation_token(jwt, 77)
        github.expire_app_tokens()  # revoked before its expires_at, as far as the runner knows

        def mint(now: datetime) -> tuple[str, datetime]:
            return gh.installation_token(app_jwt("4242", rsa_pem(), now), 77)

        gh.use_credentials(InstallationToken(mint, None, "App 4242", kept, expires))
        assert gh.head("main").sha == sha
        refused = [r for r in github.requests if r.status == 401]
        assert [r.header("Authorization") for r in refused] == [f"Bearer {kept}"]
        # A token this run made and GitHub refuses is not asked for again and again.
        github.expire_app_tokens()
        with pytest.raises(ConfigError, match="refused the token"):
            gh.head("main")
    assert len(github.app_tokens) == 2
