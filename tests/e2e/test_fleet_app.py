"""``ci-runner fleet`` with a GitHub App as its credential (``fleet.appSecret``), end to end: the
chart in fleet mode as in test_fleet.py, the fleet run as its own ServiceAccount (whose Role gets
and updates the Secret the chart made for its installation token, by name), GitHub the fake with
Apps and expiring installation tokens."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.secretscan import forms
from tests.e2e.test_fleet import Fleet, installed
from tests.support.appkeys import public_pem, rsa_pem
from tests.support.github_fake import GitHubFake
from tests.support.kube_target import KubeTarget

pytestmark = pytest.mark.helm

APP_ID, INSTALLATION = "5151", 88
APP_SECRET, KEPT = "fleet-github-app", "ci-fleet-token"
EXPIRES = "ci-runner.io/token-expires-at"


def with_app(it: Fleet) -> dict[str, Any]:
    """The fleet's credential as a GitHub App Secret (the keys of an app's githubAppSecret);
    GitHub lets in nothing but installation tokens."""
    it.github.register_app(APP_ID, public_pem(rsa_pem("fleet")), INSTALLATION)
    it.github.require_token("only-installation-tokens-get-in")
    key = it.tmp / "fleet.pem"
    key.write_text(rsa_pem("fleet"))
    it.kubectl("create", "secret", "generic", APP_SECRET, "-n", it.cicd,
               f"--from-literal=app-id={APP_ID}", f"--from-literal=installation-id={INSTALLATION}",
               f"--from-file=private-key={key}")  # fmt: skip
    return {"appSecret": APP_SECRET}


@pytest.fixture
def fleet(
    kube: KubeTarget,
    github: GitHubFake,
    helm_bin: str,
    kubectl_bin: str,
    tools_path: str,
    tmp_path: Path,
) -> Iterator[Fleet]:
    with installed(kube, github, helm_bin, kubectl_bin, tools_path, tmp_path, with_app) as it:
        yield it


def kept(fleet: Fleet) -> tuple[str | None, str | None]:
    """The installation token the fleet keeps, and its expiry annotation."""
    secret = fleet.get("secret", KEPT)
    token = (secret.get("data") or {}).get("token")
    expires = (secret["metadata"].get("annotations") or {}).get(EXPIRES)
    return (base64.b64decode(token).decode() if token else None), expires


def heads_asked(fleet: Fleet, since: int) -> list[tuple[str, int]]:
    """(repository path, status) of the head questions since request ``since``."""
    asked = [r for r in fleet.github.requests[since:] if "/commits/" in r.path]
    return sorted((r.path.split("/commits/")[0], r.status) for r in asked)


def assert_hidden(fleet: Fleet, tokens: list[str], output: str) -> None:
    """No installation token in the fleet's output, or in any ConfigMap, Event or Job; in no
    Secret but the one it is kept in."""
    leaks = [form for token in tokens for form in forms(token)]
    for leak in leaks:
        assert leak not in output
    for kind in ("configmaps", "events", "jobs", "secrets"):
        for obj in fleet.get(kind)["items"]:
            if kind == "secrets" and obj["metadata"]["name"] == KEPT:
                continue
            text = json.dumps(obj)
            for leak in leaks:
                assert leak not in text, (kind, obj["metadata"]["name"])


def test_the_kept_installation_token_makes_the_next_runs_free(fleet: Fleet) -> None:
    assert kept(fleet) == (None, None)  # as the chart made it
    first = fleet.fleet()
    assert first.code == 0, first.output
    (summary,) = first.stdout.splitlines()
    # every app's head asked (bad's settings do not validate: not asked), with one token
    assert "GitHub: 3 request(s), 3 billable" in summary and "2 idle" in summary
    (token,) = fleet.github.app_tokens
    assert kept(fleet)[0] == token and kept(fleet)[1]
    asked = [r for r in fleet.github.requests if "/commits/" in r.path]
    assert {r.header("Authorization") for r in asked} == {f"Bearer {token}"}

    since = len(fleet.github.requests)
    idle = fleet.fleet()  # the same token, the ETags it got: 304s
    assert idle.code == 0, idle.output
    assert "GitHub: 3 request(s), 1 billable" in idle.stdout  # gone's 404, as with a token
    assert heads_asked(fleet, since) == [
        ("/repos/acme/cart", 304),
        ("/repos/acme/gone", 404),
        ("/repos/acme/shop", 304),
    ]
    assert fleet.github.app_tokens == [token]  # none minted
    assert not [r for r in fleet.github.requests[since:] if "access_tokens" in r.path]

    head = fleet.github.push("acme/shop", "main", {"README.md": "next"}, message="next")
    changed = fleet.fleet()
    assert changed.code == 0, changed.output
    line, _ = changed.stdout.splitlines()
    assert line.startswith("ci-shop: created Job ci-shop-f") and head[:7] in line
    assert fleet.github.app_tokens == [token]
    assert_hidden(fleet, [token], first.output + idle.output + changed.output)


def test_an_expired_or_refused_kept_token_is_renewed(fleet: Fleet) -> None:
    first = fleet.fleet()
    assert first.code == 0, first.output
    (token,) = fleet.github.app_tokens

    # The kept expiry passed (or is within the margin): a new token before any question.
    secret = fleet.get("secret", KEPT)
    secret["metadata"]["annotations"][EXPIRES] = "2020-01-01T00:00:00+00:00"
    path = fleet.tmp / "kept.json"
    path.write_text(json.dumps(secret))
    fleet.kubectl("replace", "-f", str(path))
    since = len(fleet.github.requests)
    renewed = fleet.fleet()
    assert renewed.code == 0, renewed.output
    old, new = fleet.github.app_tokens
    assert kept(fleet)[0] == new and kept(fleet)[1] != "2020-01-01T00:00:00+00:00"
    # the kept ETags were sent, but were another credential's: one billable 200 per app
    assert "GitHub: 3 request(s), 3 billable" in renewed.stdout
    assert [s for _, s in heads_asked(fleet, since)] == [200, 404, 200]
    assert not [r for r in fleet.github.requests[since:] if r.status == 401]
    after = fleet.fleet()
    assert "GitHub: 3 request(s), 1 billable" in after.stdout, after.output

    # GitHub refuses the kept token before its expires_at (revoked): replaced once, asked again.
    fleet.github.expire_app_tokens()
    again = fleet.fleet()
    assert again.code == 0, again.output
    assert len(fleet.github.app_tokens) == 3 and kept(fleet)[0] == fleet.github.app_tokens[-1]
    # the refused round is asked again with the new token: the same billable 200s
    assert "GitHub: 3 request(s), 3 billable" in again.stdout
    assert [r.status for r in fleet.github.requests if "/commits/" in r.path].count(401) >= 1
    assert_hidden(
        fleet, fleet.github.app_tokens, first.output + renewed.output + after.output + again.output
    )
    assert old == token


def test_a_key_github_refuses_is_exit_2_and_changes_nothing(fleet: Fleet) -> None:
    fleet.github.push("acme/shop", "main", {"README.md": "next"}, message="next")  # work to do
    other = fleet.tmp / "other.pem"
    other.write_text(rsa_pem("not-the-fleets"))
    fleet.kubectl("delete", "secret", APP_SECRET, "-n", fleet.cicd)
    fleet.kubectl("create", "secret", "generic", APP_SECRET, "-n", fleet.cicd,
                  f"--from-literal=app-id={APP_ID}",
                  f"--from-literal=installation-id={INSTALLATION}",
                  f"--from-file=private-key={other}")  # fmt: skip
    refused = fleet.fleet()
    assert refused.code == 2, refused.output
    (message,) = [line for line in refused.stderr.splitlines() if "FLEET_APP_SECRET" in line]
    assert "GitHub refused the App's JWT" in message and "its 'private-key'" in message
    assert "GITHUB_APP" not in message
    assert fleet.github.app_tokens == []
    assert kept(fleet) == (None, None)
    assert fleet.get("jobs", "", "-l", "ci-runner.io/app")["items"] == []
    for leak in forms(rsa_pem("not-the-fleets")):
        assert leak not in refused.output

    # not its own Secrets: RBAC says no, by name (exit 2, not an outage)
    for setting in ("FLEET_APP_SECRET", "FLEET_APP_TOKEN_SECRET"):
        wrong = fleet.fleet(**{setting: "another-name"})
        assert wrong.code == 2 and f"{setting} " in wrong.stderr, wrong.output
