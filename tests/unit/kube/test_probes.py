"""The Kubernetes side of ``ci-runner check``: which permissions a configuration needs."""

from __future__ import annotations

from ci_runner.config import Settings
from ci_runner.kube.probes import CICD, CLUSTER, NEEDS

from tests.support.settings import app_settings_with

settings = app_settings_with


def test_needs_follow_the_settings() -> None:
    def asked(s: Settings, scope: str, resource: str) -> set[str]:
        return {
            v
            for n in NEEDS
            if n.scope == scope and n.resource == resource and n.when(s)
            for v in n.verbs
        }

    keeps_copy = settings(git_token="t0ken-value")
    own_secret = settings(git_token="t0ken-value", git_token_secret="web-git")
    assert asked(keeps_copy, CICD, "secrets") == {"get", "update"}  # never create
    assert asked(own_secret, CICD, "secrets") == {"get"}
    assert asked(settings(), CICD, "secrets") == set()  # a public repository: no Secret
    assert asked(settings(), CLUSTER, "namespaces") == {"get", "create"}
    assert asked(settings(create_namespace=False), CLUSTER, "namespaces") == set()


def test_secrets_are_asked_for_by_name() -> None:
    def names(s: Settings) -> dict[tuple[str, ...], tuple[str, ...]]:
        return {
            n.verbs: n.names(s)
            for n in NEEDS
            if n.scope == CICD and n.resource == "secrets" and n.when(s)
        }

    both = settings(git_token="t0ken-value", registry_secret="regcred")
    assert names(both) == {("get",): ("regcred",), ("get", "update"): ("ci-runner-shop-git",)}
    own = settings(git_token="t0ken-value", git_token_secret="web-git", registry_secret="regcred")
    assert names(own) == {("get",): ("regcred", "web-git")}
