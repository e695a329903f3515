"""The fleet's credential: FLEET_TOKEN_SECRET or FLEET_APP_SECRET (the setting given selects the
mode), the App's keys read from its Secret, and its installation token kept in a Secret of its own,
reused until RENEW_BEFORE its expiry and renewed then. An in-memory Kubernetes that keeps
resourceVersions, a clock and a GitHub stand-in make it a plain test."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from ci_runner import logs
from ci_runner.config import FleetSettings, load
from ci_runner.errors import ConfigError, Conflict, KubernetesError
from ci_runner.kube import fleet as k
from ci_runner.kube.client import Kind, Kube
from ci_runner.kube.token_secret import EXPIRES, RENEW_BEFORE
from ci_runner.run.fleet import FixedToken, kept_installation_token

from tests.support.appkeys import rsa_pem

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
KEPT = "ci-fleet-token"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Secrets:
    """Secrets by name, with resourceVersions: a write over an older read is a Conflict."""

    def __init__(self, *secrets: dict[str, Any]) -> None:
        self.objects = {s["metadata"]["name"]: s for s in secrets}
        self.writes = 0
        self.refuse_writes: KubernetesError | None = None

    def read(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get(name)
        return copy.deepcopy(found) if found is not None else None

    def save(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        if self.refuse_writes is not None:
            raise self.refuse_writes
        name = body["metadata"]["name"]
        now = self.objects[name]["metadata"]["resourceVersion"]
        if body["metadata"].get("resourceVersion") != now:
            raise Conflict("the object has been modified")
        saved = copy.deepcopy(body)
        saved["metadata"]["resourceVersion"] = str(int(now) + 1)
        self.objects[name] = saved
        self.writes += 1
        return copy.deepcopy(saved)

    def kept(self) -> tuple[str, str]:
        secret = self.objects[KEPT]
        token = base64.b64decode(secret["data"]["token"]).decode()
        return token, secret["metadata"]["annotations"][EXPIRES]


def secret(name: str, data: dict[str, str] | None = None, **notes: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": "cicd",
            "resourceVersion": "1",
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "ci", **notes},
        },
    }
    if data is not None:
        body["data"] = {key: b64(value) for key, value in data.items()}
    return body


class World:
    """A clock a test moves, and a GitHub that makes tokens living an hour."""

    def __init__(self, kube: Secrets) -> None:
        self.kube = kube
        self.now = START
        self.minted: list[str] = []

    def mint(self, now: datetime) -> tuple[str, datetime]:
        token = f"ghs_fleet{len(self.minted)}xyz"
        self.minted.append(token)
        return token, now + HOUR

    def source(self) -> Any:
        settings = load(
            FleetSettings, {}, {"FLEET_APP_SECRET": "app", "FLEET_APP_TOKEN_SECRET": KEPT}
        )
        api = cast(Kube, self.kube)
        return kept_installation_token(api, settings, "the fleet's App 1", self.mint, self.now_)

    def now_(self) -> datetime:
        return self.now


# -- mode selection ------------------------------------------------------------------------


def test_the_setting_given_selects_the_mode_and_one_is_required() -> None:
    token = load(FleetSettings, {}, {"FLEET_TOKEN_SECRET": "fleet-token"})
    assert (token.fleet_token_secret, token.fleet_app_secret) == ("fleet-token", None)
    app = load(FleetSettings, {}, {"FLEET_APP_SECRET": "fleet-app"})
    assert (app.fleet_token_secret, app.fleet_app_secret) == (None, "fleet-app")
    assert app.fleet_app_token_secret == "ci-runner-fleet-token"
    with pytest.raises(ConfigError, match="FLEET_TOKEN_SECRET or FLEET_APP_SECRET is required"):
        load(FleetSettings, {}, {})
    both = {"FLEET_TOKEN_SECRET": "a", "FLEET_APP_SECRET": "b"}
    with pytest.raises(ConfigError, match="both set"):
        load(FleetSettings, {}, both)
    same = {"FLEET_APP_SECRET": "b", "FLEET_APP_TOKEN_SECRET": "b"}
    with pytest.raises(ConfigError, match="a Secret of its own"):
        load(FleetSettings, {}, same)


def test_a_fixed_token_is_never_replaced() -> None:
    source = FixedToken("ghp_fixed-fleet-token")
    assert source() == "ghp_fixed-fleet-token"
    assert source.refused("ghp_fixed-fleet-token") is False
    assert logs.mask("x ghp_fixed-fleet-token y", []) == "x *** y"


# -- the App's keys --------------------------------------------------------------------------


def test_the_apps_keys_are_read_from_its_secret() -> None:
    pem = rsa_pem()
    data = {"app-id": "4242", "installation-id": "77", "private-key": pem}
    api = cast(Kube, Secrets(secret("app", data)))
    key = k.read_app(api, "cicd", "app")
    assert (key.app_id, key.installation, key.private_key) == ("4242", 77, pem.strip())
    assert "PRIVATE" not in repr(key)


def test_an_app_secret_missing_keys_or_with_wrong_ones_is_configuration() -> None:
    with pytest.raises(ConfigError, match="does not exist: create it with keys 'app-id'"):
        k.read_app(cast(Kube, Secrets()), "cicd", "app")
    api = cast(Kube, Secrets(secret("app", {"app-id": "4242"})))
    with pytest.raises(ConfigError) as missing:
        k.read_app(api, "cicd", "app")
    assert missing.value.problems == [
        "FLEET_APP_SECRET cicd/app has no key 'installation-id'",
        "FLEET_APP_SECRET cicd/app has no key 'private-key'",
    ]
    wrong = {"app-id": "app", "installation-id": "0", "private-key": "not a key"}
    with pytest.raises(ConfigError) as bad:
        k.read_app(cast(Kube, Secrets(secret("app", wrong))), "cicd", "app")
    assert [p.split(" key ")[1].split("'")[1] for p in bad.value.problems] == [
        "app-id",
        "installation-id",
        "private-key",
    ]
    assert "not a key" not in str(bad.value)


# -- the kept installation token ------------------------------------------------------------


def test_no_kept_token_mints_one_and_keeps_it_with_its_expiry() -> None:
    kube = Secrets(secret(KEPT))  # as the chart creates it: empty
    world = World(kube)
    assert world.source()() == "ghs_fleet0xyz"
    assert kube.kept() == ("ghs_fleet0xyz", "2026-11-01T13:00:00+00:00")
    meta = kube.objects[KEPT]["metadata"]
    assert meta["labels"] == {"app.kubernetes.io/managed-by": "Helm"}  # the maker's stay
    assert meta["annotations"]["meta.helm.sh/release-name"] == "ci"
    assert logs.mask("ghs_fleet0xyz", []) == "***"


def test_a_kept_token_is_reused_by_the_next_runs_until_the_margin() -> None:
    kube = Secrets(secret(KEPT))
    world = World(kube)
    world.source()()
    for minutes in (1, 30, 49):  # later runs, each reading what the first kept
        world.now = START + timedelta(minutes=minutes)
        assert world.source()() == "ghs_fleet0xyz"
    assert (world.minted, kube.writes) == (["ghs_fleet0xyz"], 1)
    world.now = START + HOUR - RENEW_BEFORE  # within the margin: renewed, and kept
    assert world.source()() == "ghs_fleet1xyz"
    assert kube.kept() == ("ghs_fleet1xyz", "2026-11-01T13:50:00+00:00")
    world.now += timedelta(minutes=5)
    assert world.source()() == "ghs_fleet1xyz"
    assert kube.writes == 2


def test_an_expired_or_unreadable_kept_token_is_renewed() -> None:
    past = {EXPIRES: "2026-11-01T11:00:00+00:00"}
    kube = Secrets(secret(KEPT, {"token": "ghs_old"}, **past))
    world = World(kube)
    assert world.source()() == "ghs_fleet0xyz"
    hand_edited = Secrets(secret(KEPT, {"token": "ghs_typed-in"}))  # no expiry: not trusted
    assert World(hand_edited).source()() == "ghs_fleet0xyz"
    assert hand_edited.kept()[0] == "ghs_fleet0xyz"


def test_a_kept_token_github_refused_is_replaced_once() -> None:
    good = {EXPIRES: "2026-11-01T12:30:00+00:00"}
    kube = Secrets(secret(KEPT, {"token": "ghs_revoked"}, **good))
    source = World(kube).source()
    assert source() == "ghs_revoked"
    assert source.refused("ghs_revoked") is True
    assert source() == "ghs_fleet0xyz"
    assert source.refused("ghs_fleet0xyz") is False  # a fresh one refused: the App's trouble
    assert kube.kept()[0] == "ghs_fleet0xyz"


def test_another_run_renewing_first_is_no_failure() -> None:
    kube = Secrets(secret(KEPT))
    source = World(kube).source()
    kube.objects[KEPT]["metadata"]["resourceVersion"] = "7"  # written meanwhile
    assert source() == "ghs_fleet0xyz"
    assert kube.writes == 0


def test_a_kept_token_secret_the_fleet_may_not_update_or_that_is_missing_is_configuration() -> None:
    with pytest.raises(ConfigError, match="FLEET_APP_TOKEN_SECRET Secret cicd/ci-fleet-token"):
        World(Secrets()).source()
    kube = Secrets(secret(KEPT))
    kube.refuse_writes = KubernetesError("forbidden", status=403)
    with pytest.raises(ConfigError, match="may not update it"):
        World(kube).source()()
