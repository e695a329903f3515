"""The build's rows of the settings table: which commits are built (WATCH_PATHS), the Kaniko
image, its flags and its pod.

``BuildSettings`` is a group of ``Settings`` (mixed into it), not a table of its own: the CLI,
the README and the chart see one table. Its parsers live here because only the build uses them.

Kaniko's flags are those of the maintained fork (github.com/osscontainertools/kaniko,
``cmd/executor/cmd/root.go``; README "Additional Flags"), which parses them with spf13/pflag:
``--name=value``, ``--name value`` and, for a few, a one-letter shorthand.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import parsing as p
from .parsing import setting

# ghcr.io/osscontainertools/kaniko is the maintained fork of the archived GoogleContainerTools
# project; pinned so a build does not change under a user without a release of ours. v1.28.5 is
# its newest release we found (its repository's tags stop at v1.28.3 on 2026-08-13 in our
# snapshot; v1.28.4 and v1.28.5 are in public use since).
DEFAULT_KANIKO_IMAGE = "ghcr.io/osscontainertools/kaniko:v1.28.5"

# What the runner itself gives Kaniko, and the setting to use instead. pflag shorthands:
# -c --context, -f --dockerfile, -d --destination (root.go).
RUNNER_FLAGS = {
    "context": "REPO and BRANCH (the runner clones the exact commit)",
    "context-sub-path": "BUILD_CONTEXT",
    "dockerfile": "DOCKERFILE",
    "destination": "IMAGE (the runner pushes <sha> and <branch>-latest)",
    "digest-file": "DEPLOY_BY_DIGEST (the runner reads the pushed digest from it)",
}
CACHE_FLAGS = {"cache": "BUILD_CACHE", "cache-repo": "CACHE_REPO", "cache-ttl": "BUILD_CACHE_TTL"}
_SHORTHANDS = {"c": "context", "f": "dockerfile", "d": "destination"}
# Build arguments the runner always passes, so that a Dockerfile can label its image.
RUNNER_BUILD_ARGS = ("CI_RUNNER_SHA", "CI_RUNNER_BRANCH")
# What BUILD_POD may set, each with the JSON type it must have.
POD_FIELDS: dict[str, type] = {
    "resources": dict,
    "nodeSelector": dict,
    "tolerations": list,
    "affinity": dict,
    "serviceAccountName": str,
    "priorityClassName": str,
}
_JSON_TYPES: dict[type, str] = {dict: "object", list: "array", str: "string"}
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def flag_name(word: str) -> str | None:
    """The long name of the Kaniko flag ``word`` sets (``-c`` is ``context``), None for a value."""
    if word.startswith("--"):
        return word[2:].split("=", 1)[0]
    if word.startswith("-") and len(word) > 1:
        return _SHORTHANDS.get(word[1], word[1])
    return None


def parse_kaniko_args(text: str) -> tuple[str, ...]:
    """KANIKO_ARGS: split as a shell splits words; never a flag the runner sets itself."""
    try:
        words = tuple(shlex.split(text))
    except ValueError as e:  # an unclosed quote
        raise ValueError(f"must split into words as a shell would ({e})") from None
    if words and flag_name(words[0]) is None:
        raise ValueError("must start with a flag (--name=value)")
    for word in words:
        name = flag_name(word)
        if name in RUNNER_FLAGS:
            raise ValueError(f"may not set --{name}: the runner sets it; use {RUNNER_FLAGS[name]}")
    return words


def parse_build_args(text: str) -> tuple[tuple[str, str], ...]:
    """BUILD_ARGS: comma-separated KEY=VALUE pairs (a value cannot hold a comma)."""
    pairs = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        key, equals, value = item.partition("=")
        if not equals or not _ARG_NAME.match(key):
            raise ValueError("entries must be KEY=VALUE with KEY a build argument name")
        if key in RUNNER_BUILD_ARGS:
            raise ValueError(f"may not set {key}: the runner passes it")
        pairs.append((key, value))
    return tuple(pairs)


def parse_build_pod(text: str) -> dict[str, Any]:
    """BUILD_POD: a JSON object with only the pod fields the runner lets a user choose."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError("must be a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    for key, wanted in value.items():
        if key not in POD_FIELDS:
            allowed = ", ".join(POD_FIELDS)
            raise ValueError(f"may not set {key!r} (only {allowed})")
        if not isinstance(wanted, POD_FIELDS[key]):
            raise ValueError(f"{key} must be a JSON {_JSON_TYPES[POD_FIELDS[key]]}")
    return value


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """Which commits are built, and how: Kaniko's image, flags, cache and pod."""

    kaniko_image: str = setting(
        "KANIKO_IMAGE",
        "Kaniko executor image of the build Job (the maintained fork, pinned).",
        default=DEFAULT_KANIKO_IMAGE,
    )
    build_timeout: int = setting(
        "BUILD_TIMEOUT",
        "Seconds a build may take (the Job's activeDeadlineSeconds).",
        default=1800,
        parse=p.positive,
        metavar="SECONDS",
    )
    dockerfile: str = setting(
        "DOCKERFILE",
        "Dockerfile, relative to the build context.",
        default="Dockerfile",
        parse=p.file_path,
        metavar="PATH",
    )
    build_context: str = setting(
        "BUILD_CONTEXT",
        "Build context directory in the repository.",
        default=".",
        parse=p.directory,
        metavar="PATH",
    )
    build_cache: bool = setting(
        "BUILD_CACHE",
        "Kaniko's layer cache in a registry repository (--cache=true --cache-repo --cache-ttl).",
        default=False,
        parse=p.boolean,
        metavar="BOOLEAN",
    )
    cache_repo: str = setting(
        "CACHE_REPO",
        "Repository of the layer cache (with BUILD_CACHE).",
        default="",
        parse=p.image,
        shown="<IMAGE>/cache",
        metavar="REPOSITORY",
    )
    build_cache_ttl: str = setting(
        "BUILD_CACHE_TTL",
        "How long a cached layer is used (Kaniko's --cache-ttl, a Go duration).",
        default="168h",
        parse=p.duration,
        metavar="DURATION",
    )
    build_args: tuple[tuple[str, str], ...] = setting(
        "BUILD_ARGS",
        "Comma-separated KEY=VALUE build arguments (visible in the Job: no secrets); "
        "CI_RUNNER_SHA and CI_RUNNER_BRANCH are always passed.",
        default=(),
        parse=parse_build_args,
        metavar="KEY=VALUE,...",
    )
    kaniko_args: tuple[str, ...] = setting(
        "KANIKO_ARGS",
        "More Kaniko flags, split as a shell splits words; not those the runner sets.",
        default=(),
        parse=parse_kaniko_args,
        metavar="FLAGS",
    )
    build_pod: Mapping[str, Any] | None = setting(
        "BUILD_POD",
        "JSON: the build pod's resources, nodeSelector, tolerations, affinity, "
        "serviceAccountName and priorityClassName.",
        default=None,
        parse=parse_build_pod,
        metavar="JSON",
    )
    registry_insecure: bool = setting(
        "REGISTRY_INSECURE",
        "Push to a plain-HTTP registry (Kaniko's --insecure --skip-tls-verify).",
        default=False,
        parse=p.boolean,
        metavar="BOOLEAN",
    )

    watch_paths: tuple[str, ...] = setting(
        "WATCH_PATHS",
        "Comma-separated globs (** spans directories); a commit that changes none of them (nor "
        "CHART_PATH) since the deployed one is not built.",
        default=(),
        parse=p.patterns,
        metavar="GLOBS",
    )

    def cache_repository(self, image: str) -> str:
        """Where the layer cache goes: CACHE_REPO, else ``<image>/cache`` (Kaniko's own
        inference from the destination, README "Flag --cache-repo", made explicit)."""
        return self.cache_repo or f"{image}/cache"


def build_problems(values: Mapping[str, Any]) -> list[str]:
    """Checks that span build settings: with BUILD_CACHE on, the cache flags are the runner's."""
    if not values.get("build_cache"):
        return []
    problems = []
    for word in values.get("kaniko_args") or ():
        name = flag_name(word)
        if name in CACHE_FLAGS:
            problems.append(
                f"KANIKO_ARGS may not set --{name} while BUILD_CACHE is on: use {CACHE_FLAGS[name]}"
            )
    return problems
