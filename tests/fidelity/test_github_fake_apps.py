"""The GitHub fake's App token exchange, deployments and refusals behave as GitHub documents
them, seen through real clients (requests, PyJWT)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
import requests

from tests.support.appkeys import public_pem, rsa_pem
from tests.support.github_fake import GitHubFake

APP_ID, INSTALLATION = "4242", 77
SHA_MEDIA = {"Accept": "application/vnd.github.sha"}


@pytest.fixture
def app(github: GitHubFake) -> str:
    """A registered App's private key; the fake knows its public half."""
    github.register_app(APP_ID, public_pem(rsa_pem()), INSTALLATION)
    github.create_repo("acme/app")
    github.push("acme/app", "main", {"a.txt": "1"})
    return rsa_pem()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def signed(key: str, iss: object = APP_ID, iat: int = -60, exp: int = 540) -> str:
    now = int(time.time())
    claims = {"iss": iss, "iat": now + iat, "exp": now + exp}
    # PyJWS signs any payload: PyJWT itself refuses a numeric iss, which GitHub accepts.
    return jwt.PyJWS().encode(json.dumps(claims).encode(), key, algorithm="RS256")


def exchange(
    session: requests.Session, github: GitHubFake, token: str, installation: int = INSTALLATION
) -> requests.Response:
    return session.post(
        f"{github.url}/app/installations/{installation}/access_tokens",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_signed_jwt_gets_an_installation_token_that_authorises_requests(
    github: GitHubFake, app: str, session: requests.Session
) -> None:
    answer = exchange(session, github, signed(app))
    assert answer.status_code == 201
    body = answer.json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert 3500 < (expires - datetime.now(UTC)).total_seconds() <= 3600  # an hour
    assert body["token"].startswith("ghs_")
    assert github.app_tokens == [body["token"]]

    github.require_token("a-personal-token")  # an installation token is accepted too
    head = session.get(
        f"{github.url}/repos/acme/app/commits/main",
        headers={**SHA_MEDIA, "Authorization": f"Bearer {body['token']}"},
    )
    assert head.status_code == 200


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": 660}, "'Expiration time' claim ('exp') is too far in the future"),
        ({"iat": -700, "exp": -10}, "'Expiration time' claim ('exp') must be a numeric value"),
        ({"iat": 120}, "'Issued at' claim ('iat') must be an Integer"),
        ({"iss": "999"}, "A JSON web token could not be decoded"),
        ({"iss": int(APP_ID)}, None),  # a number works as well as a string
        ({"iss": f"Iv1.{APP_ID}"}, None),  # and so does the client ID
    ],
)
def test_the_jwt_claims_follow_githubs_rules(
    github: GitHubFake,
    app: str,
    session: requests.Session,
    claims: dict[str, Any],
    message: str | None,
) -> None:
    answer = exchange(session, github, signed(app, **claims))
    if message is None:
        assert answer.status_code == 201
    else:
        assert answer.status_code == 401
        assert answer.json()["message"].startswith(message)


def test_a_jwt_signed_otherwise_is_refused(
    github: GitHubFake, app: str, session: requests.Session
) -> None:
    other = signed(rsa_pem("another app"))
    hmac = jwt.encode({"iss": APP_ID, "iat": 0, "exp": 2**31}, "s" * 32, algorithm="HS256")
    for token in (other, hmac, "not.a.jwt"):
        answer = exchange(session, github, token)
        assert answer.status_code == 401
        assert answer.json()["message"] == "A JSON web token could not be decoded"
    assert exchange(session, github, signed(app), installation=1).status_code == 404
    assert github.app_tokens == []


def test_installation_tokens_expire(
    github: GitHubFake, app: str, session: requests.Session
) -> None:
    token = exchange(session, github, signed(app)).json()["token"]
    url = f"{github.url}/repos/acme/app/commits/main"
    auth = {**SHA_MEDIA, "Authorization": f"Bearer {token}"}
    assert session.get(url, headers=auth).status_code == 200
    github.expire_app_tokens()
    expired = session.get(url, headers=auth)
    assert expired.status_code == 401
    assert expired.json()["message"] == "Bad credentials"

    github.set_app_token_lifetime(120)
    body = exchange(session, github, signed(app)).json()
    left = datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
    assert 60 < left.total_seconds() <= 120


def test_a_token_is_refused_once_its_expires_at_has_passed(
    github: GitHubFake, app: str, session: requests.Session
) -> None:
    # GitHub: "The installation access token will expire after 1 hour" and the answer's
    # expires_at says when, in ISO 8601 UTC with seconds (docs.github.com, "Generating an
    # installation access token for a GitHub App"; the example answer has
    # "2016-07-11T22:14:10Z"); a request with an expired token is 401 "Bad credentials".
    github.set_app_token_lifetime(1)
    body = exchange(session, github, signed(app)).json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"])
    expires = datetime.fromisoformat(body["expires_at"])
    deadline = time.monotonic() + 30
    while datetime.now(UTC) <= expires:  # a condition, not a guess at how long
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert github.app_token_expired(body["token"])
    answer = session.get(
        f"{github.url}/repos/acme/app/commits/main",
        headers={**SHA_MEDIA, "Authorization": f"Bearer {body['token']}"},
    )
    assert answer.status_code == 401 and answer.json()["message"] == "Bad credentials"


def deploy(session: requests.Session, github: GitHubFake, **fields: Any) -> requests.Response:
    return session.post(f"{github.url}/repos/acme/app/deployments", json=fields)


def test_deployments_and_their_statuses(github: GitHubFake, app: str) -> None:
    sha = github.push("acme/app", "main", {"a.txt": "2"})
    with requests.Session() as s:
        s.headers["Authorization"] = "token t"
        s.post(f"{github.url}/repos/acme/app/statuses/{sha}", json={"state": "pending"})
        # By default every status context must be success first: ours is pending.
        blocked = deploy(s, github, ref=sha, environment="prod/web", auto_merge=False)
        assert blocked.status_code == 409
        made = deploy(
            s, github, ref=sha, environment="prod/web", auto_merge=False, required_contexts=[]
        )
        assert made.status_code == 201
        body = made.json()
        assert (body["sha"], body["ref"], body["environment"]) == (sha, sha, "prod/web")
        assert body["statuses_url"] == f"{body['url']}/statuses"
        for state in ("in_progress", "success"):
            answer = s.post(body["statuses_url"], json={"state": state, "description": "d"})
            assert answer.status_code == 201
            assert (answer.json()["state"], answer.json()["environment"]) == (state, "prod/web")
        assert s.post(body["statuses_url"], json={"state": "done"}).status_code == 422
        too_long = s.post(body["statuses_url"], json={"state": "failure", "description": "x" * 141})
        assert too_long.status_code == 422

        second = deploy(
            s, github, ref=sha, environment="prod/web", auto_merge=False, required_contexts=[]
        )
        s.post(second.json()["statuses_url"], json={"state": "success"})
        listed = s.get(f"{github.url}/repos/acme/app/deployments", params={"sha": sha}).json()
    assert [d["id"] for d in listed] == [second.json()["id"], body["id"]]  # newest first
    first, _ = github.deployments("acme/app")
    # auto_inactive: the earlier success in the same environment is inactive now.
    assert [x["state"] for x in first["statuses"]] == ["in_progress", "success", "inactive"]


def test_auto_merge_of_a_ref_behind_the_default_branch(github: GitHubFake, app: str) -> None:
    old = github.push("acme/app", "main", {"a.txt": "2"})
    github.push("acme/app", "main", {"a.txt": "3"})
    with requests.Session() as s:
        s.headers["Authorization"] = "token t"
        merged = deploy(s, github, ref=old, required_contexts=[])
        assert merged.status_code == 202
        assert merged.json()["message"] == f"Auto-merged main into {old} on deployment."
        assert deploy(s, github, ref=old, required_contexts=[], auto_merge=False).status_code == 201
        assert deploy(s, github, ref="nope", auto_merge=False).status_code == 422


def test_refused_writes_answer_403_naming_the_permission(github: GitHubFake, app: str) -> None:
    sha = github.push("acme/app", "main", {"a.txt": "2"})
    github.refuse("statuses", "deployments")
    with requests.Session() as s:
        s.headers["Authorization"] = "token t"
        status = s.post(f"{github.url}/repos/acme/app/statuses/{sha}", json={"state": "pending"})
        deployment = deploy(s, github, ref=sha)
        head = s.get(f"{github.url}/repos/acme/app/commits/main", headers=SHA_MEDIA)
    for answer, kind in ((status, "statuses"), (deployment, "deployments")):
        assert answer.status_code == 403
        assert answer.json()["message"] == "Resource not accessible by integration"
        assert answer.headers["x-accepted-github-permissions"] == f"{kind}=write"
    assert head.status_code == 200  # reading is still allowed
    assert github.statuses("acme/app", sha) == [] and github.deployments("acme/app") == []
