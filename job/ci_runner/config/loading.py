"""Settings built from raw strings: every row parsed, then the checks that span rows, and every
problem named at once (``load``); and the secret values to mask even before that succeeds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import MISSING, Field
from typing import Any, TypeVar

from .. import parsing as p
from ..errors import ConfigError
from .settings import FETCH_SETTINGS, OBSOLETE, FetchSettings, FleetSettings, Settings, table

S = TypeVar("S")


def _derived(values: dict[str, Any]) -> list[str]:
    """Defaults that follow from other settings, and checks that span settings."""
    if not values.get("state_configmap") and values.get("release"):
        values["state_configmap"] = f"ci-runner-{values['release']}"
    if not values.get("status_context") and values.get("release"):
        values["status_context"] = f"ci-runner/{values['release']}"
    if not values.get("environment") and values.get("release"):
        values["environment"] = f"{values.get('deploy_namespace', 'default')}/{values['release']}"
    problems = build_problems(values) + credential_problems(values)
    keys = {
        "IMAGE_REPOSITORY_KEY": values.get("image_repository_key", "image.repository"),
        "IMAGE_TAG_KEY": values.get("image_tag_key", "image.tag"),
        "IMAGE_DIGEST_KEY": values.get("image_digest_key"),
    }
    named = [name for name, key in keys.items() if key is not None]
    for i, first in enumerate(named):
        problems += [
            f"{first} and {n} must differ" for n in named[i + 1 :] if keys[first] == keys[n]
        ]
    if values.get("status_context") in values.get("require_checks", ()):
        problems.append(
            f"REQUIRE_CHECKS names STATUS_CONTEXT {values['status_context']!r}, the runner's own "
            "status, which is success only after a deploy: remove it from REQUIRE_CHECKS"
        )
    if keys["IMAGE_DIGEST_KEY"] and values.get("deploy_by_digest") is False:
        problems.append(
            "IMAGE_DIGEST_KEY needs DEPLOY_BY_DIGEST on: without it no digest is deployed"
        )
    return problems


def _parse(
    rows: Iterable[tuple[Field[Any], p.Spec]],
    options: Mapping[str, Any],
    environ: Mapping[str, str],
) -> tuple[dict[str, Any], list[str]]:
    """Each row's value, from its option (by field name; None: not given) or else its
    variable, parsed; a row given neither is left out. With every problem found."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f, spec in rows:
        given = options.get(f.name)
        if isinstance(given, bool):  # a --flag/--no-flag
            values[f.name] = given
            continue
        raw = given if given is not None else environ.get(spec.env)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            if spec.required:
                problems.append(f"{spec.env} is required ({spec.help.rstrip('.')})")
            continue
        try:
            values[f.name] = spec.parse(text)
        except ValueError as e:
            shown = "***" if spec.secret else repr(text)
            problems.append(f"{spec.env} {e}, got {shown}")
    return values, problems


def load(kind: type[S], options: Mapping[str, Any], environ: Mapping[str, str]) -> S:
    """Build ``kind`` from command-line ``options`` (by field name; None: not given), falling
    back to ``environ``; raise ConfigError naming every problem at once."""
    values, problems = _parse(table(kind), options, environ)
    problems += fleet_problems(values) if kind is FleetSettings else _derived(values)
    if problems:
        raise ConfigError(problems)
    names = {f.name for f, _ in table(kind)}  # _derived may add what only Settings has
    return kind(**{name: value for name, value in values.items() if name in names})


def given_secrets(options: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """The raw values of secret settings, so logs and messages can mask them even when the
    settings themselves did not validate."""
    found = []
    for f, spec in table(Settings):
        if spec.secret:
            value = options.get(f.name) or environ.get(spec.env)
            if isinstance(value, str) and value.strip():
                found.append(value.strip())
    return found


def build_problems(values: Mapping[str, Any]) -> list[str]:
    """Checks that span build settings: with BUILD_CACHE on, the cache flags are the runner's."""
    if not values.get("build_cache"):
        return []
    problems = []
    for word in values.get("kaniko_args") or ():
        name = p.flag_name(word)
        if name in p.CACHE_FLAGS:
            use = p.CACHE_FLAGS[name]
            problems.append(f"KANIKO_ARGS may not set --{name} while BUILD_CACHE is on: use {use}")
    return problems


def fleet_problems(values: Mapping[str, Any]) -> list[str]:
    """The fleet has one credential: a token Secret or an App Secret, not both, not neither."""
    token, app = values.get("fleet_token_secret"), values.get("fleet_app_secret")
    if token and app:
        return [
            "FLEET_TOKEN_SECRET and FLEET_APP_SECRET are both set: the fleet asks GitHub with "
            "one credential, a token or a GitHub App"
        ]
    if not token and not app:
        return [
            "FLEET_TOKEN_SECRET or FLEET_APP_SECRET is required (the fleet's GitHub credential)"
        ]
    if app and app == values.get("fleet_app_token_secret", "ci-runner-fleet-token"):
        return [
            "FLEET_APP_TOKEN_SECRET names FLEET_APP_SECRET: the fleet keeps its installation "
            "token in a Secret of its own, never in the App's"
        ]
    return []


def credential_problems(values: dict[str, Any]) -> list[str]:
    """One kind of GitHub credentials, and a whole GitHub App when that is the kind."""
    app = {
        "GITHUB_APP_ID": values.get("github_app_id"),
        "GITHUB_APP_INSTALLATION_ID": values.get("github_app_installation_id"),
        "GITHUB_APP_PRIVATE_KEY": values.get("github_app_private_key"),
    }
    given = [name for name, value in app.items() if value is not None]
    if not given:
        return []
    problems = []
    if len(given) < len(app):
        missing = " and ".join(name for name in app if name not in given)
        problems.append(f"{', '.join(given)} given without {missing}: a GitHub App needs all three")
    for token in ("GIT_TOKEN", "GIT_TOKEN_SECRET"):
        if values.get(token.lower()):
            problems.append(
                f"{token} and GITHUB_APP_* are both set: authenticate with one kind of "
                "credentials (the App's installation token is kept for Kaniko by the runner)"
            )
    key = app["GITHUB_APP_PRIVATE_KEY"]
    if key is not None:
        problem = p.private_key_problem(key)
        if problem:
            problems.append(f"GITHUB_APP_PRIVATE_KEY {problem}")
    return problems


def _edits(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) that turn ``a`` into ``b``: the
    optimal string alignment distance, small enough here not to want a library."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        row = [i]
        for j, y in enumerate(b, 1):
            cost = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, previous2[j - 2] + 1)
            row.append(cost)
        previous2, previous = previous, row
    return previous[-1]


def misspelt(kind: type[Any], environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(variable, setting) for each variable that is no setting but is within two edits of an
    unset one (one edit for names under five letters), or (for eight letters or more) one edit
    from the start of one:
    ``IMAGES`` for ``IMAGE``, ``REGISTRY_SECERT`` for ``REGISTRY_SECRET``, ``MAX_RETRY`` for
    ``MAX_RETRIES``. A typo'd setting is otherwise silently ignored, and its default used."""
    names = [spec.env for _, spec in table(kind)]
    unset = [name for name in names if not environ.get(name)]
    found = []
    for variable in environ:
        if variable in names or variable in OBSOLETE or not variable.isupper():
            continue
        limit = 2 if len(variable) >= 5 else 1
        close = [
            name
            for name in unset
            if _edits(variable, name) <= limit
            or (len(variable) >= 8 and _edits(variable, name[: len(variable)]) <= 1)
        ]
        if close:
            found.append((variable, min(close, key=lambda name: _edits(variable, name))))
    return sorted(found)


def load_fetch(environ: Mapping[str, str]) -> FetchSettings:
    """FetchSettings from ``environ``, each row parsed by its Settings parser and default;
    ConfigError naming every problem at once."""
    rows = [(f, spec) for f, spec in table(Settings) if spec.env in FETCH_SETTINGS]
    values, problems = _parse(rows, {}, environ)
    if problems:
        raise ConfigError(problems)
    for f, _ in rows:  # FetchSettings has no defaults of its own: Settings' are its
        values.setdefault(f.name, None if f.default is MISSING else f.default)
    return FetchSettings(**values)
